//! The benchmarks' yardstick: bare axum answering a constant body, with no layers and no state.
//!
//! `baseline ADDR FILE` serves FILE's bytes as JSON on every path.

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18182".to_owned());
    let body = match args.next() {
        Some(path) => std::fs::read(path)?,
        None => b"{}".to_vec(),
    };
    let body: &'static [u8] = Vec::leak(body);
    let app = Router::new().fallback(get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}
