//! The OSB fields of a service and a plan, written once for the two
//! documents that read them: the catalog file (`load.rs`: unknown keys are
//! errors, so a typo is caught) and another broker's `GET /v2/catalog`
//! (`import.rs`: unknown keys are vendor extensions and ignored). serde
//! cannot share fields between the two (`deny_unknown_fields` does not work
//! with `flatten`), so macros write each struct with the common fields plus
//! its own.

/// A struct with an OSB object's identity (`id`, `name`, `description`),
/// then `fields`, then the document's own `extra` fields.
macro_rules! osb_doc {
    (
        $(#[$meta:meta])*
        struct $name:ident { $($extra:tt)* }
        fields { $($fields:tt)* }
    ) => {
        $(#[$meta])*
        struct $name {
            id: String,
            name: String,
            description: String,
            $($fields)*
            $($extra)*
        }
    };
}

/// `service_doc! { #[attrs] struct Name { extra fields, } plans: PlanType }`.
macro_rules! service_doc {
    ($(#[$meta:meta])* struct $name:ident { $($extra:tt)* } plans: $plan:ty) => {
        osb_doc! {
            $(#[$meta])*
            struct $name { $($extra)* }
            fields {
                #[serde(default)]
                tags: Vec<String>,
                #[serde(default)]
                requires: Vec<String>,
                bindable: bool,
                #[serde(default)]
                instances_retrievable: bool,
                #[serde(default)]
                bindings_retrievable: bool,
                #[serde(default)]
                allow_context_updates: bool,
                #[serde(default)]
                plan_updateable: bool,
                metadata: Option<Value>,
                dashboard_client: Option<Value>,
                plans: Vec<$plan>,
            }
        }
    };
}

/// `plan_doc! { #[attrs] struct Name { extra fields, } polling: T, maintenance: M }`:
/// the two documents read a polling duration and maintenance info each
/// their own way.
macro_rules! plan_doc {
    (
        $(#[$meta:meta])* struct $name:ident { $($extra:tt)* }
        polling: $polling:ty, maintenance: $maintenance:ty
    ) => {
        osb_doc! {
            $(#[$meta])*
            struct $name { $($extra)* }
            fields {
                free: Option<bool>,
                bindable: Option<bool>,
                plan_updateable: Option<bool>,
                #[serde(default)]
                binding_rotatable: bool,
                maximum_polling_duration: Option<$polling>,
                maintenance_info: Option<$maintenance>,
                metadata: Option<Value>,
                schemas: Option<Value>,
            }
        }
    };
}

pub(super) use {osb_doc, plan_doc, service_doc};
