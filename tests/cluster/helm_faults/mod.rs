//! The helm engine when things go wrong, and its plan options, with the
//! real helm 4 against the real API server (tests/testenv), the broker
//! running as the deploy/ ServiceAccount with deploy/'s RBAC.
//!
//! Faults: a helm that crashes, hangs or disappears, and a release a killed
//! helm left `pending-*`. Every failed operation must end `failed` with a
//! description that says why, and a repeat must work once the fault is gone.
//! One fault a real API server can't be made to produce on demand, a 500
//! on a chosen write, runs against the in-process fake (`tests/fake-kube`):
//! `api_server_errors_fail_the_install_with_the_servers_message`.
//!
//! Plan options (catalog `tests/fixtures/catalog-helm/`): the policy check
//! runs before anything is written, one namespace per instance (created,
//! labelled, deleted, and never a namespace the broker did not create),
//! `delete_pvcs`, and where binding Secrets may go.
//!
//! "Nothing was written" is a watch on the API server
//! ([`Cluster::writes_during`]), so even an object created and deleted
//! again would show. Faulty helms are shell wrappers around the real
//! binary, each in its own directory whose name is a unique marker
//! (`pgrep -f` finds leftovers).

use crate::common;

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use common::cluster::{Cluster, release_records, suffix};
use common::cluster_calls::data_keys;
use common::*;
use fake_kube::FakeKube;
use serde_json::{Value, json};

use crate::helpers::helm_faults::*;
use chartbroker::runtime::Engine;

mod deletes_and_watch;
mod install_faults;
