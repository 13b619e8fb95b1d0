//! The four ways a platform deletes (unbind and deprovision, each sync or
//! async), sent and followed to their end, for the fault-matrix suites
//! (tests/delete_faults*.rs): each cell sends one of these and checks what
//! the platform saw.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{Resp, TestBroker};

/// A delete path of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delete {
    /// `DELETE .../service_bindings/:id`, waiting for the answer.
    UnbindSync,
    /// The same with `accepts_incomplete=true`, polled to its end.
    UnbindAsync,
    /// `DELETE /v2/service_instances/:id`, waiting for the answer.
    DeprovisionSync,
    /// The same with `accepts_incomplete=true`, polled to its end.
    DeprovisionAsync,
}

impl Delete {
    /// Every path.
    pub const ALL: [Delete; 4] = [
        Delete::UnbindSync,
        Delete::UnbindAsync,
        Delete::DeprovisionSync,
        Delete::DeprovisionAsync,
    ];

    /// Whether it deletes a binding.
    pub fn unbinds(self) -> bool {
        matches!(self, Delete::UnbindSync | Delete::UnbindAsync)
    }

    /// Whether the platform accepts an asynchronous answer.
    pub fn is_async(self) -> bool {
        matches!(self, Delete::UnbindAsync | Delete::DeprovisionAsync)
    }
}

/// What the platform saw of one delete: the answer, and for an accepted
/// one the final `last_operation`.
#[derive(Debug)]
pub struct Seen {
    /// The DELETE's own answer.
    pub answer: Resp,
    /// The last `last_operation` of an accepted (202) delete.
    pub polled: Option<Resp>,
}

impl Seen {
    /// The delete succeeded, as the platform reads it: 200 `{}`, or 202
    /// then `succeeded`. Returns the final description, if any.
    #[track_caller]
    pub fn assert_succeeded(&self, cell: &str) -> String {
        match &self.polled {
            None => {
                assert_eq!(
                    self.answer.status,
                    StatusCode::OK,
                    "{cell}: {}",
                    self.answer.text
                );
                assert_eq!(self.answer.json, json!({}), "{cell}: {}", self.answer.text);
                String::new()
            }
            Some(p) => {
                assert_eq!(p.status, StatusCode::OK, "{cell}: {}", p.text);
                assert_eq!(p.json["state"], "succeeded", "{cell}: {}", p.text);
                p.json["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
        }
    }

    /// The delete failed, as the platform reads it: a 5xx OSB error, or
    /// 202 then `failed`. Returns the description, which must not be empty.
    #[track_caller]
    pub fn assert_failed(&self, cell: &str) -> String {
        let (status, body, text) = match &self.polled {
            None => {
                assert!(
                    self.answer.status.is_server_error(),
                    "{cell}: {}",
                    self.answer.text
                );
                (self.answer.status, &self.answer.json, &self.answer.text)
            }
            Some(p) => {
                assert_eq!(p.json["state"], "failed", "{cell}: {}", p.text);
                (p.status, &p.json, &p.text)
            }
        };
        let d = body["description"].as_str().unwrap_or_default().to_string();
        assert!(
            !d.trim().is_empty(),
            "{cell}: {status} without a description: {text}"
        );
        d
    }
}

impl TestBroker {
    /// Sends `how` for instance `id` (and binding `bid`) of `service`/`plan`
    /// and follows an accepted one to its end.
    pub async fn delete(&self, how: Delete, ids: (&str, &str), id: &str, bid: &str) -> Seen {
        let answer = self.send_delete(how, ids, id, bid).await;
        let polled = if answer.status == StatusCode::ACCEPTED {
            let op = answer.json["operation"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Some(if how.unbinds() {
                self.wait_binding(id, bid, &op).await
            } else {
                self.wait_instance(id, &op).await
            })
        } else {
            None
        };
        Seen { answer, polled }
    }

    /// Sends `how` and returns its answer, without following it.
    pub async fn send_delete(
        &self,
        how: Delete,
        (service, plan): (&str, &str),
        id: &str,
        bid: &str,
    ) -> Resp {
        let path = if how.unbinds() {
            format!("/v2/service_instances/{id}/service_bindings/{bid}")
        } else {
            format!("/v2/service_instances/{id}")
        };
        let accepts = if how.is_async() {
            "&accepts_incomplete=true"
        } else {
            ""
        };
        let uri = format!("{path}?service_id={service}&plan_id={plan}{accepts}");
        self.call(Method::DELETE, &uri, None).await
    }
}

/// Copies a folder tree (a chart a cell may then remove).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
