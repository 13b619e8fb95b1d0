//! The compact form a record takes before it is sealed (format `s3`, see
//! [`super::seal`]): raw DEFLATE with a preset dictionary of what every
//! record repeats — field names, states, operation kinds, the shapes of
//! `null`/`false` fields — so a record costs about its own values on disk
//! (an instance of the example catalog: 1,579 bytes of JSON, 341 packed;
//! its binding 1,269 and 308).
//!
//! The dictionary is part of the format: records sealed as `s3` open only
//! with these exact bytes, so it is never edited. A better dictionary is a
//! new format byte (`s4`) with this one kept for reading.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What a record decompresses to at most: far above any record the broker
/// writes, so a damaged value can't make a reader allocate without bound.
const MAX_PLAIN: usize = 64 << 20;

/// The preset dictionary of format `s3`. DEFLATE finds matches anywhere in
/// it; the most frequent strings sit at its end, where distances are
/// shortest. Holds no catalog data and nothing secret.
pub(crate) const DICTIONARY_S3: &[u8] = concat!(
    r#"{"engine":"mysql","admin":{"host":null,"port":null,"username":null,"password":"{{secrets.root_password}}"},"#,
    r#""database":"{{parameters.database}}","shared":{"username":"{{parameters.username}}","password":"{{secrets.user_password}}"},"#,
    r#""fallback_to_shared":true,"connect_timeout_seconds":5.0,"in_release":null}"#,
    r#"{"engine":"postgresql","engine":"redis","in_release":{"#,
    r#""upstream":{"broker":"service_id":"plan_id":"#,
    r#""teardown":{"served_by":"upstream","service":"plan":"own_namespace":true,"delete_pvcs":true,"binding_users":null},"#,
    r#""teardown":{"served_by":"chart","service":"plan":"own_namespace":false,"delete_pvcs":false,"binding_users":{"#,
    r#""originating_identity":{"platform":"kubernetes","value":{"username":"uid":"groups":["system:authenticated"],"extra":{}}},"#,
    r#""context":{"platform":"cloudfoundry","organization_guid":"space_guid":"organization_name":"space_name":"instance_name":"#,
    r#""target":{"plan_id":"parameters":{},"requested_parameters":{},"context":{},"maintenance_version":null},"#,
    r#""dependencies":{"instance_id":"binding_id":"secret":{"namespace":"name":"cb-bind-"}},"#,
    r#""progress":{"operation":"state":"in progress","polls":0},"#,
    r#"{"id":"update-","kind":"update","state":"failed","description":"Updated","instance_usable":true,"update_repeatable":true,"#,
    r#"{"id":"deprovision-","kind":"deprovision","state":"in progress","description":"Deprovisioned","instance_usable":false,"#,
    r#"{"id":"unbind-","kind":"unbind","state":"succeeded","description":"Unbound","#,
    r#""state":"provision_failed","state":"bind_failed","state":"binding","state":"provisioning","state":"deleted","#,
    r#"{"id":"b-","instance_id":"service_id":"plan_id":"app_guid":null,"bind_resource":{"app_guid":"route":null},"#,
    r#""bind_resource":null,"context":null,"parameters":{},"credentials":{"database":"app","host":".svc.cluster.local","#,
    r#""jdbcUrl":"jdbc:mysql://",".svc.cluster.local:3306/app","password":"port":3306,"uri":"mysql://app:"#,
    r#"postgresql://redis://","username":"app"},"secret_ref":{"namespace":"name":"cb-bind-"},"target":null,"#,
    r#""dependent":null,"state":"bound","left_nothing":false,"fingerprint":"operations":[{"id":"bind-","kind":"bind","#,
    r#""state":"succeeded","description":"Bound","#,
    r#"{"id":"service_id":"plan_id":"parameters":{"database":"app","username":"app"},"requested_parameters":{},"#,
    r#""context":{"namespace":"platform":"kubernetes"},"organization_guid":null,"space_guid":null,"#,
    r#""maintenance_version":"1.0.0","release":"cb-","namespace":"secrets":{"root_password":"user_password":"#,
    r#""dashboard_url":null,"state":"ready","provision_fingerprint":"dependencies":{},"#,
    r#""operations":[{"id":"provision-","kind":"provision","state":"succeeded","description":"Provisioned","#,
    r#""instance_usable":null,"update_repeatable":null,"started_at":17,"finished_at":17,"deadline":17,"#,
    r#""attempts":1,"fingerprint":"target":null,"originating_identity":null,"request_identity":null,"#,
    r#""progress":null,"owner":"heartbeat":17"#,
)
.as_bytes();

thread_local! {
    // One deflate and one inflate state per thread, reset for each record:
    // a new deflate state allocates and zeroes about 300 KB (its window,
    // hash chains and buffers), which cost more than deflating the record
    // and page-faulted the fresh memory in on every store write.
    static PACKER: RefCell<Option<Compress>> = const { RefCell::new(None) };
    static UNPACKER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// `plain`, deflated against `dictionary`.
pub(crate) fn pack(dictionary: &[u8], plain: &[u8]) -> Vec<u8> {
    PACKER.with_borrow_mut(|slot| {
        let c = slot.get_or_insert_with(|| Compress::new(Compression::default(), false));
        // A reset state deflates exactly as a new one (the tests compare).
        c.reset();
        pack_with(c, dictionary, plain)
    })
}

fn pack_with(c: &mut Compress, dictionary: &[u8], plain: &[u8]) -> Vec<u8> {
    c.set_dictionary(dictionary)
        .expect("a preset dictionary is accepted before any input");
    let mut out = Vec::with_capacity(plain.len() / 2 + 64);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&plain[consumed..], &mut out, FlushCompress::Finish)
            .expect("deflating an in-memory buffer cannot fail");
        if status == Status::StreamEnd {
            return out;
        }
        out.reserve(out.capacity().max(64));
    }
}

/// The record `packed` holds, or `None` when it is not a complete stream
/// deflated against `dictionary` (or would exceed [`MAX_PLAIN`]).
pub(crate) fn unpack(dictionary: &[u8], packed: &[u8]) -> Option<Vec<u8>> {
    UNPACKER.with_borrow_mut(|slot| {
        let d = slot.get_or_insert_with(|| Decompress::new(false));
        d.reset(false);
        unpack_with(d, dictionary, packed)
    })
}

fn unpack_with(d: &mut Decompress, dictionary: &[u8], packed: &[u8]) -> Option<Vec<u8>> {
    d.set_dictionary(dictionary).ok()?;
    let mut out = Vec::with_capacity(packed.len() * 4 + 64);
    loop {
        let consumed = d.total_in() as usize;
        let before = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(&packed[consumed..], &mut out, FlushDecompress::Finish)
            .ok()?;
        match status {
            Status::StreamEnd if d.total_in() as usize == packed.len() => return Some(out),
            Status::StreamEnd => return None,
            _ if out.len() < out.capacity() && before == (d.total_in(), d.total_out()) => {
                // No progress with room left: the stream is cut short.
                return None;
            }
            _ if out.len() >= MAX_PLAIN => return None,
            _ => out.reserve(out.capacity().min(MAX_PLAIN)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instance and a binding of the example catalog's `mysql/basic` as
    /// the broker wrote them (render engine), passwords and ids as random
    /// as real ones.
    pub(crate) const INSTANCE: &str = r#"{"id":"bench-999999999","service_id":"a0f5bc72-baad-493b-bc23-a1955f509a90","plan_id":"d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1","parameters":{"database":"app","username":"app"},"requested_parameters":{},"context":{"namespace":"bench","platform":"kubernetes"},"organization_guid":null,"space_guid":null,"maintenance_version":"1.0.0","release":"cb-bench-999999999","namespace":"bench","secrets":{"root_password":"e26q9NxSZ9DW41gyPgeHkyq7pKJjCe4E","user_password":"aKNj7xNmMjioMTk78IykEnAYif3UQuhw"},"dashboard_url":null,"state":"ready","provision_fingerprint":"8cf8e5a8aa797fe810e7250c972525828b87bf6b416a4183ec464832e54d71a7","dependencies":{},"teardown":{"served_by":"chart","service":"mysql","plan":"basic","own_namespace":false,"delete_pvcs":false,"binding_users":{"engine":"mysql","admin":{"host":null,"port":null,"username":null,"password":"{{secrets.root_password}}"},"database":"{{parameters.database}}","shared":{"username":"{{parameters.username}}","password":"{{secrets.user_password}}"},"fallback_to_shared":true,"connect_timeout_seconds":5.0,"in_release":null}},"operations":[{"id":"provision-f1f2ffe2-7dba-471b-a591-99f002f476cc","kind":"provision","state":"succeeded","description":"Provisioned","instance_usable":null,"update_repeatable":null,"started_at":1796495065,"finished_at":1796495065,"deadline":1796495965,"attempts":1,"fingerprint":"8cf8e5a8aa797fe810e7250c972525828b87bf6b416a4183ec464832e54d71a7","target":null,"originating_identity":null,"request_identity":null,"progress":null,"owner":"17531-60417734-8d72-4309-a1df-f5b4b3219827","heartbeat":1796495065}]}"#;
    pub(crate) const BINDING: &str = r#"{"id":"b-999999999","instance_id":"bench-999999999","service_id":"a0f5bc72-baad-493b-bc23-a1955f509a90","plan_id":"d58ea2b6-9f2e-4142-9e1c-9ab508dc47d1","app_guid":null,"bind_resource":null,"context":null,"parameters":{},"credentials":{"database":"app","host":"cb-bench-999999999.bench.svc.cluster.local","jdbcUrl":"jdbc:mysql://cb-bench-999999999.bench.svc.cluster.local:3306/app","password":"aKNj7xNmMjioMTk78IykEnAYif3UQuhw","port":3306,"uri":"mysql://app:aKNj7xNmMjioMTk78IykEnAYif3UQuhw@cb-bench-999999999.bench.svc.cluster.local:3306/app","username":"app"},"secret_ref":{"namespace":"bench","name":"cb-bind-b-999999999"},"target":null,"dependent":null,"state":"bound","left_nothing":false,"fingerprint":"5ff4185c27ec25a29068355a9e467a26eb1f48ceac1cd2ddb60fed1d25713338","operations":[{"id":"bind-795a6f62-8c6d-45f5-81a1-09a4185446c4","kind":"bind","state":"succeeded","description":"Bound","instance_usable":null,"update_repeatable":null,"started_at":1796495065,"finished_at":1796495065,"deadline":1796495125,"attempts":1,"fingerprint":"5ff4185c27ec25a29068355a9e467a26eb1f48ceac1cd2ddb60fed1d25713338","target":null,"originating_identity":null,"request_identity":null,"progress":null,"owner":"17531-60417734-8d72-4309-a1df-f5b4b3219827","heartbeat":1796495065}]}"#;

    #[test]
    fn typical_records_pack_to_about_a_quarter() {
        // Measured: 1,579 -> 341 and 1,269 -> 308 bytes; sealing adds 38,
        // the store's version 8, so each stays far under a kilobyte.
        for (plain, most) in [(INSTANCE, 400), (BINDING, 400)] {
            let packed = pack(DICTIONARY_S3, plain.as_bytes());
            assert!(packed.len() <= most, "{} -> {}", plain.len(), packed.len());
            assert_eq!(unpack(DICTIONARY_S3, &packed).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn a_reused_state_packs_and_unpacks_as_a_new_one() {
        let fresh = |plain: &[u8]| {
            let mut c = Compress::new(Compression::default(), false);
            pack_with(&mut c, DICTIONARY_S3, plain)
        };
        // Interleaved, and after a stream that was cut short, so any state
        // left over from the record before would show.
        assert_eq!(
            unpack(DICTIONARY_S3, &pack(DICTIONARY_S3, b"abc")[..2]),
            None
        );
        for plain in [INSTANCE, BINDING, INSTANCE, "", BINDING] {
            let packed = pack(DICTIONARY_S3, plain.as_bytes());
            assert_eq!(packed, fresh(plain.as_bytes()));
            let mut d = Decompress::new(false);
            let once = unpack_with(&mut d, DICTIONARY_S3, &packed);
            assert_eq!(unpack(DICTIONARY_S3, &packed), once);
            assert_eq!(once.as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn round_trip_of_any_bytes() {
        for plain in [
            &b""[..],
            b"x",
            br#"{"id":"a","state":"ready"}"#,
            &[0u8, 255, 7, 7, 7, 7, 7, 7, 7, 1][..],
            &vec![b'a'; 300_000][..],
        ] {
            let packed = pack(DICTIONARY_S3, plain);
            assert_eq!(unpack(DICTIONARY_S3, &packed).as_deref(), Some(plain));
        }
    }

    #[test]
    fn cut_extended_or_foreign_streams_do_not_unpack() {
        let plain = br#"{"id":"a","state":"ready","operations":[]}"#;
        let packed = pack(DICTIONARY_S3, plain);
        for len in 0..packed.len() {
            assert_eq!(unpack(DICTIONARY_S3, &packed[..len]), None, "{len}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert_eq!(unpack(DICTIONARY_S3, &longer), None);
        // Another dictionary reads other bytes, or none.
        assert_ne!(
            unpack(b"another dictionary", &packed).as_deref(),
            Some(&plain[..])
        );
    }

    #[test]
    fn the_dictionary_is_what_s3_records_were_written_with() {
        // Editing it would make every s3 record unreadable: a new
        // dictionary needs a new format byte.
        let sum = DICTIONARY_S3.iter().fold(0u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        assert_eq!((DICTIONARY_S3.len(), sum), (2802, 6911330639392152426));
    }
}
