//! The bind and unbind steps chart plans call. A failed bind leaves
//! nothing: no statement ran, or the broker dropped the user again before
//! answering. A failed unbind says which user is still there and that a
//! retry finishes it. A deprovision needs no user dropped when the database
//! goes away with the release.
//!
//! Messages quoting a database's error are redacted by who wrote the
//! error ([`redact_for`]): the server's own words with the chart-text
//! redactor, the local network stack's with the plain one.

use serde_json::Value;

use super::{
    DbError, Target, User, UserAdmin, mentions, new_password, resolve, secrets_of, shared_user,
    user_name,
};
use crate::broker::model::Secrets;
use crate::broker::ports::BackendError;
use crate::catalog::BindingUsers;
use crate::helm::redact as redact_chart_text;
use crate::redact::redact;

/// Bind: creates the binding's own user and returns it, or the shared user
/// when the database is unreachable and the plan falls back. `redact` lists
/// the instance's secrets, kept out of messages. A failure says whether it
/// left nothing behind ([`BackendError::left_nothing`]): true when no
/// statement ran, or when the broker dropped the partly created user again.
pub(crate) async fn bind(
    admin: &dyn UserAdmin,
    spec: &BindingUsers,
    data: &Value,
    ids: (&str, &str),
    redact_also: &[String],
) -> Result<User, BackendError> {
    let target = resolve(spec, data).map_err(|e| BackendError::new(e).leaving_nothing())?;
    let user = User {
        username: user_name(ids.0, ids.1),
        password: new_password(),
    };
    let secrets = secrets_of(&target, Some(&user), redact_also);
    let what = format!(
        "the {} database at {}",
        target.engine.display_name(),
        target.address()
    );
    match admin.create(&target, &user).await {
        Ok(()) => {
            tracing::info!(instance = %ids.0, binding = %ids.1, user = %user.username,
                database = %target.address(), "created the binding's database user");
            Ok(user)
        }
        Err(DbError::Unreachable(e)) if spec.fallback_to_shared => {
            let shared = shared_user(spec, data)
                .map_err(BackendError::new)?
                .ok_or_else(|| BackendError::new("binding_users.shared is not set"))?;
            tracing::warn!(instance = %ids.0, binding = %ids.1, database = %target.address(),
                error = %redact(&e, &secrets),
                "the database is unreachable: this binding gets the shared user (fallback_to_shared)");
            Ok(shared)
        }
        Err(DbError::Unreachable(e)) => Err(BackendError::new(redact(
            &format!(
                "could not reach {what} to create this binding's user: {e}; no user was created"
            ),
            &secrets,
        ))
        .leaving_nothing()),
        Err(DbError::Refused(e)) => Err(BackendError::new(redact_chart_text(
            &format!(
                "{what} refused the broker's administrator login to create this binding's user: {e}; no user was created"
            ),
            &secrets,
        ))
        .leaving_nothing()),
        Err(DbError::Failed(e)) => {
            let why = format!("creating this binding's user in {what}: {e}");
            let why = BackendError::new(redact_chart_text(&why, &secrets));
            Err(undo_bind(admin, &target, ids, why).await)
        }
    }
}

/// Orphan mitigation on the broker's side: a bind that fails after its
/// user may have been created drops the user before it answers, so no user
/// stays that no binding accounts for. `why` is the bind's failure; the
/// answer says whether anything is left.
pub(crate) async fn undo_bind(
    admin: &dyn UserAdmin,
    target: &Target,
    ids: (&str, &str),
    why: BackendError,
) -> BackendError {
    let username = user_name(ids.0, ids.1);
    let secrets = secrets_of(target, None, &[]);
    match admin.drop_user(target, &username).await {
        Ok(()) => {
            tracing::info!(instance = %ids.0, binding = %ids.1, user = %username,
                "the bind failed: dropped the binding's database user again");
            BackendError::new(format!(
                "{}; the broker dropped the binding's user {username} again, so nothing is left",
                why.message
            ))
            .leaving_nothing()
        }
        Err(e) => BackendError::new(redact_for(
            &e,
            &format!(
                "{}; the binding's user {username} may exist in the {} database at {} and could not be dropped ({e}): unbinding this binding drops it",
                why.message,
                target.engine.display_name(),
                target.address()
            ),
            &secrets,
        )),
    }
}

/// [`undo_bind`] for a bind that failed after [`bind`] returned the user
/// (its credentials could not be rendered or delivered).
pub(crate) async fn undo_after_bind(
    admin: &dyn UserAdmin,
    spec: &BindingUsers,
    data: &Value,
    ids: (&str, &str),
    why: BackendError,
) -> BackendError {
    match resolve(spec, data) {
        Ok(target) => undo_bind(admin, &target, ids, why).await,
        Err(_) => why,
    }
}

/// One binding's user to drop: the database admin, the plan's
/// `binding_users`, what its templates see, the (instance, binding) ids its
/// name derives from, the credentials it was issued, and the secrets to
/// keep out of messages.
#[derive(Clone, Copy)]
pub(crate) struct Revoking<'a> {
    pub(crate) admin: &'a dyn UserAdmin,
    pub(crate) spec: &'a BindingUsers,
    pub(crate) data: &'a Value,
    pub(crate) ids: (&'a str, &'a str),
    pub(crate) credentials: &'a Secrets,
    pub(crate) redact_also: &'a [String],
}

/// Unbind: drops the binding's user. A binding that fell back to the shared
/// user (its credentials never named its own) needs nothing revoked when the
/// database is still unreachable. A failure says what is still there and
/// that a retry finishes it.
pub(crate) async fn unbind(r: &Revoking<'_>) -> Result<(), BackendError> {
    let Revoking {
        spec,
        ids,
        credentials,
        redact_also,
        ..
    } = *r;
    let Err((target, e)) = revoke(r).await? else {
        return Ok(());
    };
    let username = user_name(ids.0, ids.1);
    let named = mentions(&credentials.to_value(), &username);
    Err(BackendError::new(redact_for(
        &e,
        &format!(
            "{}. The user {} there; a retry finishes it once the database answers again{}",
            drop_failed(&target, &username, &e),
            if named { "is still" } else { "may still be" },
            if spec.database_in_release() {
                ", and deprovisioning the instance removes it with the database"
            } else {
                ""
            },
        ),
        &secrets_of(&target, None, redact_also),
    )))
}

/// Drops a binding's user because its instance is being deprovisioned.
/// When the database runs inside the release ([`BindingUsers::database_in_release`]),
/// uninstalling the release deletes it with every user, so a user that
/// can't be dropped now needs no dropping: the answer is then a note for
/// the operation's description instead of a failure.
pub(crate) async fn unbind_with_instance(r: &Revoking<'_>) -> Result<Option<String>, BackendError> {
    if !r.spec.database_in_release() {
        return unbind(r).await.map(|()| None);
    }
    let (ids, redact_also) = (r.ids, r.redact_also);
    let Err((target, e)) = revoke(r).await? else {
        return Ok(None);
    };
    let why = match e {
        DbError::Unreachable(_) => "it did not answer",
        DbError::Refused(_) => "it refused the broker's administrator login",
        DbError::Failed(_) => "dropping them failed",
    };
    tracing::info!(instance = %ids.0, binding = %ids.1,
        error = %redact_for(&e, &e.to_string(), &secrets_of(&target, None, redact_also)),
        "the binding's user was not dropped: its database goes away with the release");
    Ok(Some(format!(
        "binding users were not dropped in the {} database at {} ({why}), and need no dropping: the database is deleted with the release",
        target.engine.display_name(),
        target.address()
    )))
}

/// Drops the binding's user: `Ok(Err(..))` says where and why it could not
/// be (none of it for a binding that got the shared user while the
/// database is unreachable).
async fn revoke(r: &Revoking<'_>) -> Result<Result<(), (Target, DbError)>, BackendError> {
    let Revoking {
        admin,
        spec,
        data,
        ids,
        credentials,
        ..
    } = *r;
    let target = resolve(spec, data).map_err(BackendError::new)?;
    let username = user_name(ids.0, ids.1);
    match admin.drop_user(&target, &username).await {
        Ok(()) => {
            tracing::info!(instance = %ids.0, binding = %ids.1, user = %username,
                "dropped the binding's database user");
            Ok(Ok(()))
        }
        Err(DbError::Unreachable(_))
            if spec.fallback_to_shared && !mentions(&credentials.to_value(), &username) =>
        {
            Ok(Ok(()))
        }
        Err(e) => Ok(Err((target, e))),
    }
}

fn drop_failed(target: &Target, username: &str, e: &DbError) -> String {
    let at = format!(
        "the {} database at {}",
        target.engine.display_name(),
        target.address()
    );
    match e {
        DbError::Unreachable(e) => {
            format!("could not reach {at} to drop this binding's user {username}: {e}")
        }
        DbError::Refused(e) => format!(
            "{at} refused the broker's administrator login to drop this binding's user {username}: {e}"
        ),
        DbError::Failed(e) => format!("dropping this binding's user {username} in {at}: {e}"),
    }
}

/// Redacts `message`, which quotes `e`, by who wrote `e`. A login refused
/// or a statement failed quotes the database server, which the chart runs
/// and which may have been handed a secret (a cleartext password login):
/// the chart-text redactor, as for a chart's own messages. A server never
/// reached quotes only the local network stack (DNS, connect, timeout; the
/// drivers are built without TLS), which holds a secret, if at all, as it
/// was sent: the plain redactor, each secret whole and in every encoding,
/// at a hundredth of the cost (it was 6.1M of a fallback bind's 9.7M
/// instructions).
fn redact_for(e: &DbError, message: &str, secrets: &[String]) -> String {
    match e {
        DbError::Unreachable(_) => redact(message, secrets),
        DbError::Refused(_) | DbError::Failed(_) => redact_chart_text(message, secrets),
    }
}
