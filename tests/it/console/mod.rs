//! The web console: its signed links (`POST /v1/console-links`, `hookline console-link`) and
//! what a link's token may do through the API (`links`), and the console driven in Debian's
//! chromium by Playwright (`browser`, `usable`), and the live feed it reads (`live`).

mod browser;
mod links;
mod live;
mod page;
mod usable;
mod validation;

use hookline::config::{Config, Redacted};

use crate::world::World;

/// The key the console tests sign links with.
pub const LINK_KEY: &str = "console-link-key-for-tests-0123456789";

/// The world's config with console links on.
pub fn config(w: &World) -> Config {
    let mut c = w.config("\"0s\", \"300ms\"");
    c.api.console_link_key = Redacted(LINK_KEY.into());
    c
}

/// The token in a link's fragment (`.../console#t=<token>`).
pub fn token_of(url: &str) -> String {
    url.split_once("#t=").expect("the token is in the fragment").1.to_string()
}
