//! A clear error for a cloudpickle version mismatch between a client and the server (issue
//! #14): remote builders (gearsclient, redgrease) send functions cloudpickled by the
//! client's cloudpickle, and the server's loads them. A different version fails with an
//! opaque `Can't get attribute '_function_setstate'` or `code() argument … must be …`; the
//! reply then also names both versions (the client's as far as the pickle shows it) and
//! what to install. Depends on `gearpy::site` only.

/// `error` (a script's error text) with the mismatch explained, when `code` loads a pickle
/// with cloudpickle and the error is one a version mismatch gives; else `error` unchanged.
pub fn explain(code: &str, error: String) -> String {
    let loads_pickle = code.contains("cloudpickle") || error.contains("cloudpickle");
    let attr_missing = error.contains("Can't get attribute") && error.contains("cloudpickle");
    let code_mismatch = error.contains("code() argument") || error.contains("code expected");
    if !loads_pickle || !(attr_missing || code_mismatch) {
        return error;
    }
    let server = gearpy::site::cloudpickle_version().unwrap_or_else(|| "(none)".into());
    let client = client_version(&error, &server);
    format!(
        "{error} -- cloudpickle version mismatch: the client pickled with cloudpickle {client}, \
         the server has cloudpickle {server} (on Python {py}); install the server's version \
         on the client: pip install cloudpickle=={server}",
        py = gearpy::site::python_version(),
    )
}

/// What the pickle shows of the client's cloudpickle: it names functions of its own
/// module layout (`cloudpickle.cloudpickle._function_setstate` since 3.0,
/// `cloudpickle.cloudpickle_fast` from 1.5 to 2.x); code-object errors mean a cloudpickle
/// older than the server's Python.
fn client_version(error: &str, server: &str) -> String {
    let server_major = server.split('.').next().and_then(|m| m.parse::<u32>().ok());
    if error.contains("cloudpickle.cloudpickle_fast") {
        "1.5-2.x (its pickle refers to cloudpickle.cloudpickle_fast)".into()
    } else if error.contains("'cloudpickle.cloudpickle'") && server_major.is_some_and(|m| m < 3) {
        ">= 3.0 (its pickle refers to cloudpickle.cloudpickle._function_setstate)".into()
    } else if error.contains("code() argument") || error.contains("code expected") {
        "older than this Python supports (its code objects have another layout)".into()
    } else {
        format!("other than {server}")
    }
}
