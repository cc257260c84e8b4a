use cacheback::cacheback;
use loco_rs::prelude::*;

#[derive(Debug)]
pub struct LookupError;

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("lookup failed")
    }
}

#[cacheback]
async fn answer(q: String) -> std::result::Result<u32, LookupError> {
    let _ = q;
    Ok(42)
}

// `?` in a handler needs `From<LookupError> for loco_rs::Error`: rustc says so.
async fn handler() -> Result<Response> {
    let value = answer("q".to_owned()).await?;
    format::json(value)
}

fn main() {
    let _ = handler;
}
