// The entry point of the demo page's bundle: the JSS tracking API and the data fetcher exactly as
// the npm registry ships them. The page's own code (assets/demo/demo.js) uses them from
// `window.JSS`.
export { trackingApi } from '@sitecore-jss/sitecore-jss/tracking';
export { NativeDataFetcher } from '@sitecore-jss/sitecore-jss';
