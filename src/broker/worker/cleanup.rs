//! Cleaning up after what broke: the bindings a deprovision removes with
//! its instance, and a failed bind's credentials revoked before it answers
//! (orphan mitigation on the broker's side), so a failed operation leaves
//! nothing to clean up.

use crate::broker::model::{HasOperations, Instance, Secrets};
use crate::broker::ports::{
    Backend, BackendError, BindingCtx, InstanceCtx, Removal, StoreError, Table,
};
use crate::broker::{Broker, BrokerError};

impl Broker {
    /// Unbinds every binding the platform left on an instance being
    /// deprovisioned, and forgets them. Credentials that die with the
    /// instance and can't be revoked now are skipped: the answer is a note
    /// saying so.
    pub(super) async fn remove_bindings(
        &self,
        inst: &Instance,
        ctx: InstanceCtx<'_>,
    ) -> std::result::Result<Option<String>, BackendError> {
        let internal = |e: BrokerError| BackendError::new(e.to_string());
        let bindings = self.bindings_of(&inst.id).await.map_err(internal)?;
        let backend = self.backend(ctx.plan).map_err(internal)?;
        let mut notes = std::collections::BTreeSet::new();
        for (b, version) in bindings {
            // A failed bind that left nothing has nothing to revoke.
            if b.exists() {
                let bctx = BindingCtx {
                    instance: ctx.clone(),
                    binding: &b,
                };
                // A failed bind may have written its Secret unrecorded.
                let secret = b.secret_ref.clone().unwrap_or_else(|| b.secret_ref(inst));
                self.sink().delete(bctx.clone(), &secret).await?;
                notes.extend(backend.unbind_with_instance(bctx).await?);
            }
            let key = crate::broker::binding_key(&b.instance_id, &b.id);
            self.forget_binding(inst, key, version).await?;
        }
        Ok((!notes.is_empty()).then(|| notes.into_iter().collect::<Vec<_>>().join("; ")))
    }

    /// Forgets a binding `inst`'s deprovision has revoked: with the write
    /// that settles the deprovision ([`crate::broker::pending`]'s riders,
    /// one durable write for all), or at once without an operation.
    async fn forget_binding(
        &self,
        inst: &Instance,
        key: String,
        version: u64,
    ) -> std::result::Result<(), BackendError> {
        if let Some(op) = inst.current() {
            let removal = Removal {
                table: Table::Bindings,
                key,
                version,
            };
            self.inner
                .pending
                .riders
                .add(Table::Instances, &inst.id, &op.id, removal);
            return Ok(());
        }
        match self.store().remove(Table::Bindings, &key, version).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(BackendError::new(e.to_string())),
        }
    }

    /// Orphan mitigation on the broker's side: a bind whose credentials
    /// were made but not delivered removes its Secret (in case it was
    /// written) and revokes them before it answers, so nothing is left that
    /// no binding accounts for. `why` is the failure; the answer says
    /// whether anything is left.
    pub(super) async fn undo_bind(
        &self,
        backend: &dyn Backend,
        ctx: BindingCtx<'_>,
        creds: &Secrets,
        why: BackendError,
    ) -> BackendError {
        let mut made = ctx.binding.clone();
        made.credentials = creds.clone();
        let ctx = BindingCtx {
            instance: ctx.instance,
            binding: &made,
        };
        let secret = made.secret_ref(ctx.instance.instance);
        let removed = self.sink().delete(ctx.clone(), &secret).await;
        let revoked = backend.unbind(ctx).await;
        let left: Vec<String> = [
            removed
                .err()
                .map(|e| format!("its Secret could not be removed ({e})")),
            revoked
                .err()
                .map(|e| format!("its credentials could not be revoked ({e})")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if left.is_empty() {
            tracing::info!(binding = %made.id, "the bind failed: revoked its credentials again");
            return BackendError::new(format!(
                "{}; the broker revoked the binding's credentials again, so nothing is left",
                why.message
            ))
            .leaving_nothing();
        }
        BackendError::new(format!(
            "{}; {}: unbinding this binding finishes removing it",
            why.message,
            left.join(" and ")
        ))
    }
}
