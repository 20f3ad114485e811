//! The tracking service: `{prefix}/event` and `{prefix}/flush`.

use crate::{edge::TrackingCaller, sessions::Visitor};

pub mod event;
pub mod flush;
pub mod identify;

fn visitor(caller: &TrackingCaller) -> Visitor {
    Visitor {
        device: caller.device.device,
        session: caller.session,
        site: caller.site.clone(),
        user_agent: caller.user_agent.clone(),
        ip: caller.ip,
        human_cookie: caller.device.human,
    }
}
