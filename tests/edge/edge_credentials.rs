//! Authentication compared against the configured secrets themselves
//! (zero-padded, constant time) rather than their hashes, and the merged
//! edge middleware: every credential of every length still authenticates,
//! nothing near one does (prefixes, extensions, the zero padding itself,
//! another user's password), and the checks answer in their order with the
//! request identity echoed on every answer.

use crate::common;
use crate::helpers::edge_credentials::*;
use axum::http::{Method, StatusCode};
use common::*;

#[tokio::test]
async fn every_user_of_every_length_authenticates_and_nothing_near_one_does() {
    let huge = long(2000, 'h'); // decoded past the stack buffer
    let block = long(64, 'b'); // exactly one padding block
    let users = [
        ("a", "b"),
        ("colon", "p:a:ss"),
        ("unicode", "pässwörd-ü"),
        ("huge", huge.as_str()),
        ("block", block.as_str()),
    ];
    let b = broker(&users, &[]).await;
    assert_eq!(status(&b, &auth()).await, StatusCode::OK);
    for (user, pass) in users {
        assert_eq!(
            status(&b, &basic(user, pass)).await,
            StatusCode::OK,
            "{user}"
        );
        let lower = basic(user, pass).replacen("Basic", "basic", 1);
        assert_eq!(
            status(&b, &lower).await,
            StatusCode::OK,
            "{user}: scheme case"
        );
        let mut near = vec![
            format!("{pass}x"),
            format!("{pass}\0"),
            format!("{pass}{}", "\0".repeat(64)),
            pass.to_uppercase(),
        ];
        if let Some((i, _)) = pass.char_indices().last() {
            near.push(pass[..i].to_string());
        }
        for wrong in near.iter().filter(|w| w.as_str() != pass) {
            let got = status(&b, &basic(user, wrong)).await;
            assert_eq!(got, StatusCode::UNAUTHORIZED, "{user} with a near password");
        }
        for (other, other_pass) in users.iter().filter(|(o, _)| *o != user) {
            let got = status(&b, &basic(user, other_pass)).await;
            assert_eq!(
                got,
                StatusCode::UNAUTHORIZED,
                "{user} with {other}'s password"
            );
        }
        let padded_user = format!("{user}\0");
        let got = status(&b, &basic(&padded_user, pass)).await;
        assert_eq!(got, StatusCode::UNAUTHORIZED, "{user}: padded name");
    }
    // The first colon splits: a name can't swallow part of the password.
    let got = status(&b, &raw_basic(b"colon:p:a:ss")).await;
    assert_eq!(got, StatusCode::OK);
    for junk in [
        raw_basic(b"colonp:a:ss"),
        raw_basic(b"ab"),
        raw_basic(b""),
        raw_basic(b":"),
        "Basic !!!".to_string(),
        "Basic".to_string(),
        format!("Basic {}", "A".repeat(5000)),
        format!("Bearer {}", huge),
    ] {
        let shown = &junk[..junk.len().min(40)];
        assert_eq!(status(&b, &junk).await, StatusCode::UNAUTHORIZED, "{shown}");
    }
}

#[tokio::test]
async fn every_token_of_every_length_authenticates_and_nothing_near_one_does() {
    let tokens = [long(1, 't'), long(63, 'u'), long(100, 'v'), long(1500, 'w')];
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let b = broker(&[], &refs).await;
    for t in &tokens {
        assert_eq!(status(&b, &format!("Bearer {t}")).await, StatusCode::OK);
        assert_eq!(status(&b, &format!("bearer  {t} ")).await, StatusCode::OK);
        for wrong in [
            format!("{t}x"),
            // A header can't carry a NUL (nor trailing blanks, trimmed).
            format!("{t} {t}"),
            t[..t.len() - 1].to_string(),
            t.to_uppercase(),
        ] {
            let got = status(&b, &format!("Bearer {wrong}")).await;
            assert_eq!(got, StatusCode::UNAUTHORIZED, "near token of {}", t.len());
        }
        // A token is not a password, nor the other way round.
        assert_eq!(status(&b, &basic(USER, t)).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        status(&b, &format!("Bearer {PASS}")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(&b, "Bearer ").await, StatusCode::UNAUTHORIZED);
}

/// 401 before 412 before 400, 405 only once authenticated, and the request
/// identity echoed on each of them and on success.
#[tokio::test]
async fn the_checks_answer_in_order_and_echo_the_request_identity() {
    let b = TestBroker::start().await;
    let bad_version = ("x-broker-api-version", "1.0");
    let bad_identity = ("x-broker-api-originating-identity", "kubernetes !!!");
    let a = auth();
    let good = ("authorization", a.as_str());
    let cases: [Case; 7] = [
        (
            Method::GET,
            "/v2/catalog",
            vec![bad_version, bad_identity],
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/v2/catalog",
            vec![good, bad_version, bad_identity],
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            Method::GET,
            "/v2/catalog",
            vec![good, VERSION, bad_identity],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/v2/catalog",
            vec![good, VERSION],
            StatusCode::OK,
        ),
        (
            Method::POST,
            "/v2/catalog",
            vec![VERSION],
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::POST,
            "/v2/catalog",
            vec![good, VERSION],
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/v2/nothing-here",
            vec![],
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, uri, mut headers, want) in cases {
        headers.push(ID);
        let r = b.send_bare(method.clone(), uri, &headers, None).await;
        assert_eq!(r.status, want, "{method} {uri} {headers:?}: {}", r.text);
        assert_eq!(
            r.headers.get(ID.0).and_then(|v| v.to_str().ok()),
            Some(ID.1),
            "{method} {uri}: request identity echoed"
        );
        if want != StatusCode::OK {
            assert!(
                r.json["error"].is_string() || r.json["description"].is_string(),
                "{}",
                r.text
            );
        }
    }
}
