//! The Sitecore Layout Service, passed through (`[layout_service] upstream`): the seed's
//! "requests to Layout Service will track a page view by default. This can be disabled by
//! adding `tracking=false` to the Layout Service request query string."

pub mod render;
