// Tracks the visitor's page view from the app's server (Next.js middleware, an edge function),
// with a server-side key: the visitor's cookies, user agent, referrer and address go to the
// tracker, and the tracker's cookies come back to the visitor's response.
export async function trackPageView(request, response, { tracker, key, clientIp }) {
  if (request.method !== 'GET' || !(request.headers.get('accept') || '').includes('text/html')) return;
  const url = new URL(request.url);
  const forwarded = request.headers.get('x-forwarded-for') || clientIp || '';
  const answer = await fetch(`${tracker}/sitecore/api/track/pageview?sc_apikey=${key}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      cookie: request.headers.get('cookie') || '',
      'user-agent': request.headers.get('user-agent') || '',
      'x-forwarded-for': forwarded,
    },
    body: JSON.stringify({ url: url.pathname + url.search, referrer: request.headers.get('referer') || undefined }),
  }).catch(() => null); // the page never waits on a failed tracker
  for (const cookie of answer ? answer.headers.getSetCookie() : []) {
    response.headers.append('set-cookie', cookie);
  }
}
