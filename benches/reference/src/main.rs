//! The benchmark's reference: a bare axum server answering `GET /v2/catalog`
//! with fixed bytes (the broker's own catalog body, read from a file), no
//! authentication, no middleware. `scripts/bench.sh` compares the broker's
//! catalog throughput against it in the same run.
//!
//! Usage: `bare_catalog LISTEN_ADDR BODY_FILE`

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args
        .next()
        .expect("usage: bare_catalog LISTEN_ADDR BODY_FILE");
    let file = args
        .next()
        .expect("usage: bare_catalog LISTEN_ADDR BODY_FILE");
    let body = Bytes::from(std::fs::read(&file).expect("read the catalog body"));
    let app = Router::new().route(
        "/v2/catalog",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("bind the listen address");
    axum::serve(listener, app).await.expect("serve");
}
