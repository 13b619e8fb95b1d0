//! The records the broker keeps (instances, bindings): their table, key and
//! what the store indexes them by. Its own file so the compare-and-swap loop
//! ([`super::cas`]) and the held deletes ([`super::pending`]) share it
//! without importing each other.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::binding_key;
use super::model::{Binding, BindingState, HasOperations, Instance, InstanceState};
use super::ports::{Table, Tags};

/// A record kept under one key of one table.
pub(super) trait Record: Serialize + DeserializeOwned + HasOperations {
    /// Its table.
    const TABLE: Table;
    /// Its key in the table.
    fn key(&self) -> String;
    /// Deleted, kept so `last_operation` can answer for the delete.
    fn is_tombstone(&self) -> bool;
    /// What the store indexes it by: who runs its in-flight operation, and
    /// whether it is a tombstone (so takeover and the tombstone sweep read
    /// only those records).
    fn tags(&self) -> Tags {
        Tags {
            owner: self.current().and_then(|o| o.owner.clone()),
            tombstone: self.is_tombstone(),
        }
    }
}

impl Record for Instance {
    const TABLE: Table = Table::Instances;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn is_tombstone(&self) -> bool {
        self.state == InstanceState::Deleted
    }
}

impl Record for Binding {
    const TABLE: Table = Table::Bindings;
    fn key(&self) -> String {
        binding_key(&self.instance_id, &self.id)
    }
    fn is_tombstone(&self) -> bool {
        self.state == BindingState::Deleted
    }
}
