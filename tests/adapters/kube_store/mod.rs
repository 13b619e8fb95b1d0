//! The Secret-backed store against the fake API server: compare-and-swap by
//! resourceVersion, versions that never repeat, listing by label selector,
//! sealing at rest, and two "replicas" sharing one namespace.

use std::sync::{Arc, Mutex};

use crate::helpers::kube_store::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chartbroker::broker::ports::{Expect, Store, StoreError, Table};
use chartbroker::store::kubernetes::{KEY_CHECK_SECRET, KubeStore, key_from_secret, secret_name};
use chartbroker::store::seal::Sealer;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use serde_json::{Value, json};

mod cas_and_sealing;
mod keys;
