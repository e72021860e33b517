//! The corpus: every hostile request with the answer it must get, and the body builders it
//! uses.

use super::*;

/// A multipart body with boundary `XyZ` from whole parts (`headers\r\n\r\nvalue`), closed.
fn multipart(parts: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(b"--XyZ\r\n");
        b.extend_from_slice(p);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"--XyZ--\r\n");
    b
}

/// A multipart text part.
fn part(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut p = b"Content-Disposition: form-data; name=\"".to_vec();
    p.extend_from_slice(name);
    p.extend_from_slice(b"\"\r\n\r\n");
    p.extend_from_slice(value);
    p
}

/// `n` urlencoded fields `f0=v&f1=v&...`.
fn many_fields(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("f{i}=v"))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// `body` as one chunk of a chunked body, with the last chunk after it.
fn one_chunk(body: &[u8]) -> Vec<u8> {
    let mut c = format!("{:x}\r\n", body.len()).into_bytes();
    c.extend_from_slice(body);
    c.extend_from_slice(b"\r\n0\r\n\r\n");
    c
}

/// The corpus. Limits of the gateway: 2 MB bodies, 256 fields, 64 KiB values, 1 s body timeout.
pub(super) fn corpus(c: &Ctx) -> Vec<Case> {
    use Expect::*;
    let st = c.storage();
    let create = c.create_url();
    let ors_request = format!("/genesys/1/service/{}/gms.custom", c.service_id);
    let push = format!("/genesys/1/admin/service/{}/status", c.service_id);
    let three_mb = vec![b'x'; 3_000_000];
    let mb_name = vec![b'n'; 1_000_000];
    let admin = format!("Authorization: {}\r\n", c.admin);
    let mut big_chunked = Vec::new();
    for _ in 0..30 {
        big_chunked.extend_from_slice(format!("186a0\r\n{}\r\n", "x".repeat(100_000)).as_bytes());
    }
    big_chunked.extend_from_slice(b"0\r\n\r\n");
    let health = format!(
        "GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: {}\r\n\r\n",
        c.host
    );
    let mut smuggled = b"zz\r\n".to_vec();
    smuggled.extend_from_slice(health.as_bytes());
    let mut cl_te_smuggle = b"0\r\n\r\n".to_vec();
    cl_te_smuggle.extend_from_slice(health.as_bytes());
    // Form-body head lines with these framing headers.
    let form = |framing: &str| format!("Content-Type: {FORM}\r\n{framing}").into_bytes();
    let te_cl = |cl: usize| {
        form(&format!(
            "Content-Length: {cl}\r\nTransfer-Encoding: chunked\r\n"
        ))
    };
    // A request-interaction create (that would succeed) with more parameters.
    let reserve = |more: &str| {
        let body = format!("_phone_number=1&_provide_code=true&{more}");
        c.post(create, FORM, body.as_bytes())
    };
    vec![
        // --- multipart ---
        case(
            "multipart without a boundary parameter",
            c.post(st, "multipart/form-data", &multipart(&[&part(b"a", b"1")])),
            Error(400),
        ),
        case(
            "multipart with an empty boundary",
            c.post(
                st,
                "multipart/form-data; boundary=",
                &multipart(&[&part(b"a", b"1")]),
            ),
            Error(400),
        ),
        case(
            "multipart boundary not the one in the body",
            c.post(
                st,
                "multipart/form-data; boundary=Other",
                &multipart(&[&part(b"a", b"1")]),
            ),
            Error(400),
        ),
        case(
            "multipart body that is not multipart",
            c.post(st, MP, b"this is not multipart at all"),
            Error(400),
        ),
        case(
            "multipart without its closing boundary",
            c.post(
                st,
                MP,
                b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n",
            ),
            Error(400),
        ),
        case(
            "multipart part with a name-less Content-Disposition",
            c.post(
                st,
                MP,
                &multipart(&[b"Content-Disposition: form-data\r\n\r\nv"]),
            ),
            Error(400),
        ),
        case(
            "multipart part without Content-Disposition",
            c.post(st, MP, &multipart(&[b"Content-Type: text/plain\r\n\r\nv"])),
            Error(400),
        ),
        case(
            "multipart name that is not UTF-8",
            c.post(st, MP, &multipart(&[&part(b"a\xffb", b"1")])),
            Error(400),
        ),
        case(
            "multipart value that is not UTF-8",
            c.post(st, MP, &multipart(&[&part(b"a", b"f\xff\xfe")])),
            Error(400),
        ),
        case(
            "multipart name with NUL",
            c.post(st, MP, &multipart(&[&part(b"a\0b", b"1")])),
            Error(400),
        ),
        case(
            "multipart value with NUL",
            c.post(st, MP, &multipart(&[&part(b"a", b"x\0y")])),
            Error(400),
        ),
        case(
            "multipart with 10,000 parts",
            c.post(
                st,
                MP,
                &multipart(
                    &(0..10_000)
                        .map(|i| part(format!("f{i}").as_bytes(), b"v"))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(Vec::as_slice)
                        .collect::<Vec<_>>(),
                ),
            ),
            Error(413),
        ),
        case(
            "multipart with a 1 MB field name",
            c.post(st, MP, &multipart(&[&part(&mb_name, b"v")])),
            Error(413),
        ),
        case(
            "multipart boundary of 200 characters (RFC says 70; accepted)",
            c.post(
                st,
                &format!("multipart/form-data; boundary={}", "B".repeat(200)),
                format!(
                    "--{b}\r\n{}\r\n--{b}--\r\n",
                    String::from_utf8_lossy(&part(b"a", b"1")),
                    b = "B".repeat(200)
                )
                .as_bytes(),
            ),
            Accepted,
        ),
        // --- urlencoded ---
        case(
            "urlencoded bad escape",
            c.post(st, FORM, b"a=%zz"),
            Error(400),
        ),
        case(
            "urlencoded escape cut short",
            c.post(st, FORM, b"a=%F"),
            Error(400),
        ),
        case(
            "urlencoded raw name that is not UTF-8",
            c.post(st, FORM, b"\xff=1"),
            Error(400),
        ),
        case(
            "urlencoded escaped value that is not UTF-8",
            c.post(st, FORM, b"a=%C3%28"),
            Error(400),
        ),
        case("urlencoded NUL", c.post(st, FORM, b"a=%00"), Error(400)),
        case("urlencoded empty name", c.post(st, FORM, b"=x"), Error(400)),
        case(
            "urlencoded 10,000 fields",
            c.post(st, FORM, &many_fields(10_000)),
            Error(413),
        ),
        case(
            "urlencoded 1 MB field name",
            c.post(st, FORM, &[&mb_name[..], b"=v"].concat()),
            Error(413),
        ),
        case(
            "query string with 5,000 parameters (a request line over max_header_bytes)",
            c.post(
                format!("{st}?{}", String::from_utf8_lossy(&many_fields(5_000))),
                FORM,
                b"a=1",
            ),
            Error(431),
        ),
        case(
            "query string with a bad escape",
            c.post(format!("{st}?a=%zz"), FORM, b"b=1"),
            Error(400),
        ),
        // --- JSON ---
        case("JSON array", c.post(st, JSON, br#"["a", "b"]"#), Error(400)),
        case(
            "JSON nested object",
            c.post(st, JSON, br#"{"a": {"b": "c"}}"#),
            Error(400),
        ),
        case(
            "JSON nested 100,000 deep",
            c.post(st, JSON, &[b'['; 100_000]),
            Error(400),
        ),
        case(
            "JSON huge string value (1.5 MB)",
            c.post(
                st,
                JSON,
                format!(r#"{{"a": "{}"}}"#, "x".repeat(1_500_000)).as_bytes(),
            ),
            Error(413),
        ),
        case(
            "JSON with 10,000 keys",
            c.post(
                st,
                JSON,
                format!(
                    "{{{}}}",
                    (0..10_000)
                        .map(|i| format!(r#""k{i}":"v""#))
                        .collect::<Vec<_>>()
                        .join(",")
                )
                .as_bytes(),
            ),
            Error(413),
        ),
        case("JSON cut short", c.post(st, JSON, br#"{"a":"#), Error(400)),
        case(
            "JSON that is not UTF-8",
            c.post(st, JSON, b"{\"a\": \"\xff\"}"),
            Error(400),
        ),
        case(
            "JSON with a NUL escape",
            c.post(st, JSON, br#"{"a": "x\u0000y"}"#),
            Error(400),
        ),
        case(
            "JSON in UTF-16",
            c.post(
                st,
                "application/json; charset=utf-16",
                &[0xFF, 0xFE, b'{', 0, b'}', 0],
            ),
            Error(400),
        ),
        // --- body framing and size ---
        case(
            "body over max_body_bytes with Content-Length",
            c.post(st, FORM, &three_mb),
            Error(413),
        ),
        case(
            "body over max_body_bytes, chunked",
            c.chunked(st, FORM, &big_chunked),
            Error(413),
        ),
        case(
            "Content-Length of 10^12, short body",
            c.post_raw(st, &form("Content-Length: 1000000000000\r\n"), b"a=1"),
            Error(413),
        ),
        case(
            "body shorter than Content-Length, then the client stops sending",
            c.post_raw(st, &form("Content-Length: 100\r\n"), b"a=1"),
            Error(400),
        )
        .half_close(),
        case(
            "body shorter than Content-Length, then the client waits",
            c.post_raw(st, &form("Content-Length: 100\r\n"), b"a=1"),
            Error(408),
        ),
        case(
            "chunked body that stops in the middle of a chunk",
            c.chunked(st, FORM, b"10\r\na=1"),
            Error(408),
        ),
        case(
            "chunked size that is not hex, with a request smuggled after it",
            [
                c.head_open("POST", st, &form("Transfer-Encoding: chunked\r\n")),
                smuggled,
            ]
            .concat(),
            Error(400),
        ),
        case(
            "chunk size past u64",
            c.chunked(st, FORM, b"ffffffffffffffffffff\r\na=1\r\n0\r\n\r\n"),
            Error(400),
        ),
        case(
            "Content-Length that is not a number",
            c.post_raw(st, &form("Content-Length: abc\r\n"), b"a=1"),
            Pingora(400),
        ),
        case(
            "negative Content-Length",
            c.post_raw(st, &form("Content-Length: -3\r\n"), b"a=1"),
            Pingora(400),
        ),
        case(
            "two different Content-Lengths",
            c.post_raw(
                st,
                &form("Content-Length: 3\r\nContent-Length: 5\r\n"),
                b"a=1",
            ),
            Pingora(400),
        ),
        // RFC 9112 6.1: Transfer-Encoding wins, and the connection closes after the reply.
        case(
            "Content-Length and Transfer-Encoding (chunked wins, then close)",
            [c.head_open("POST", st, &te_cl(3)), one_chunk(b"a=1")].concat(),
            Accepted,
        ),
        case(
            "Content-Length and Transfer-Encoding with a request smuggled after the last chunk",
            [c.head_open("POST", st, &te_cl(40)), cl_te_smuggle].concat(),
            Accepted,
        ),
        case(
            "Transfer-Encoding that does not end in chunked",
            c.post_raw(st, &form("Transfer-Encoding: gzip\r\n"), b"a=1"),
            Pingora(400),
        ),
        // --- ids and paths ---
        case(
            "storage id that is not a UUID",
            c.get("/genesys/1/storage/not-a-uuid"),
            Error(404),
        ),
        case(
            "storage id '..'",
            c.get("/genesys/1/storage/.."),
            Error(404),
        ),
        case(
            "storage id with %2F",
            c.get("/genesys/1/storage/..%2F..%2Fetc"),
            Error(400),
        ),
        case(
            "storage id with %00",
            c.get("/genesys/1/storage/a%00b"),
            Error(400),
        ),
        case(
            "storage id with a bad escape",
            c.get("/genesys/1/storage/%zz"),
            Error(400),
        ),
        case(
            "storage id escaping bytes that are not UTF-8",
            c.get("/genesys/1/storage/%FF%FE"),
            Error(400),
        ),
        case(
            "storage key with %2F",
            c.get(format!("/genesys/1/storage/{}/a%2Fb", c.data_id)),
            Error(400),
        ),
        case(
            "raw bytes that are not UTF-8 in the path",
            c.get(b"/genesys/1/storage/\xff\xfe"),
            Pingora(400),
        ),
        case(
            "service id that is not a UUID",
            c.post("/genesys/1/service/not-a-uuid/status", FORM, b""),
            Error(404),
        ),
        case(
            "'..' climbing from service to admin",
            c.post_with(
                "/genesys/1/service/../admin/node/changestatus/OFFLINE",
                FORM,
                admin.as_bytes(),
                b"",
            ),
            Error(404),
        ),
        case(
            "delete of service '..'",
            c.head("DELETE", "/genesys/1/service/..", b""),
            Error(404),
        ),
        case(
            "custom storage id with %2F",
            c.post_with(
                "/genesys/1/storage/custom/..%2Fx/60",
                FORM,
                b"gms_user: u\r\n",
                b"a=1",
            ),
            Error(400),
        ),
        case(
            "status push for an id that is not a UUID",
            c.post_with(
                "/genesys/1/admin/service/..%2E/status",
                JSON,
                admin.as_bytes(),
                b"{}",
            ),
            Error(404),
        ),
        // --- overlong URLs and headers ---
        case(
            "20 KB storage id (under max_header_bytes)",
            c.get(format!("/genesys/1/storage/{}", "i".repeat(20_000))),
            Error(400),
        ),
        case(
            "60 KB storage id",
            c.get(format!("/genesys/1/storage/{}", "i".repeat(60_000))),
            Error(431),
        ),
        case(
            "70 KB URL (over max_header_bytes, before the http crate's 64 KB URI limit)",
            c.get(format!("/genesys/1/storage/{}", "i".repeat(70_000))),
            Error(431),
        ),
        case(
            "100 KB gms_user header",
            c.head(
                "GET",
                "/genesys/1/storage/no-such-id",
                format!("gms_user: {}\r\n", "u".repeat(100_000)).as_bytes(),
            ),
            Error(431),
        ),
        case(
            "header section over 1 MB",
            c.head(
                "GET",
                "/genesys/1/admin/node/health",
                format!("X-Big: {}\r\n", "b".repeat(1_100_000)).as_bytes(),
            ),
            Error(431),
        ),
        case(
            "300 header lines",
            c.head(
                "GET",
                "/genesys/1/admin/node/health",
                (0..300)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
                    .as_bytes(),
            ),
            Pingora(400),
        ),
        // --- TTLs ---
        case("_ttl negative", reserve("_ttl=-5"), Error(400)),
        case(
            "_ttl past u64",
            reserve("_ttl=99999999999999999999999"),
            Error(400),
        ),
        case("_ttl fractional", reserve("_ttl=1.5"), Error(400)),
        case("_ttl not a number", reserve("_ttl=soon"), Error(400)),
        case("_ttl zero", reserve("_ttl=0"), Error(400)),
        case(
            "_service_ttl negative on the ORS service",
            c.post(
                format!("/genesys/1/service/{SVC}"),
                FORM,
                b"_service_ttl=-5",
            ),
            Error(400),
        ),
        // Contract 7: a non-positive or non-numeric storage ttl means 30 s, a big one max_ttl.
        case(
            "storage ttl negative (contract 7: default)",
            c.post("/genesys/1/storage/-5", FORM, b"a=1"),
            Accepted,
        ),
        case(
            "storage ttl past i64 (contract 7: cut to max_ttl)",
            c.post("/genesys/1/storage/99999999999999999999999", FORM, b"a=1"),
            Accepted,
        ),
        case(
            "storage ttl fractional (contract 7: default)",
            c.post("/genesys/1/storage/1.5", FORM, b"a=1"),
            Accepted,
        ),
        case(
            "storage ttl not a number (contract 7: default)",
            c.post("/genesys/1/storage/soon", FORM, b"a=1"),
            Accepted,
        ),
        case(
            "storage update ttl negative (contract 7: default)",
            c.post(format!("/genesys/1/storage/{}/-1", c.data_id), FORM, b"b=2"),
            Accepted,
        ),
        // --- headers ---
        case(
            "gms_user with a bare CR",
            c.head("GET", "/genesys/1/storage/x", b"gms_user: a\rb\r\n"),
            Pingora(400),
        ),
        case(
            "gms_user folded over two lines (CRLF + space)",
            c.head("GET", "/genesys/1/storage/x", b"gms_user: a\r\n b\r\n"),
            Pingora(400),
        ),
        case(
            "gms_user with NUL",
            c.head("GET", "/genesys/1/storage/x", b"gms_user: a\0b\r\n"),
            Pingora(400),
        ),
        case(
            "gms_user that is not UTF-8",
            c.post_with(st, FORM, b"gms_user: \xff\xfe\r\n", b"a=1"),
            Error(400),
        ),
        case(
            "Authorization that is not base64",
            c.head(
                "GET",
                "/genesys/1/admin/node/status",
                b"Authorization: Basic !!!\r\n",
            ),
            Error(401),
        ),
        case(
            "Authorization of 100 KB",
            c.head(
                "GET",
                "/genesys/1/admin/node/status",
                format!("Authorization: Basic {}\r\n", "A".repeat(100_000)).as_bytes(),
            ),
            Error(431),
        ),
        // --- duplicate parameters (contract 2: the first counts) ---
        case(
            "duplicate _ttl, first valid",
            reserve("_ttl=30&_ttl=-1"),
            Accepted,
        ),
        case(
            "duplicate _ttl, first invalid",
            reserve("_ttl=-1&_ttl=30"),
            Error(400),
        ),
        case(
            "duplicate Content-Type, first unsupported",
            c.post_with(
                st,
                "text/plain",
                b"Content-Type: application/json\r\n",
                br#"{"a":"1"}"#,
            ),
            Error(415),
        ),
        // --- methods ---
        case("TRACE on an API path", c.head("TRACE", st, b""), Error(405)),
        case(
            "CONNECT on an API path",
            c.head("CONNECT", st, b""),
            Error(405),
        ),
        case(
            "CONNECT to an authority",
            c.head("CONNECT", &c.host, b""),
            Error(405),
        ),
        case("unknown method", c.head("FROBNICATE", st, b""), Error(405)),
        case(
            "lower-case method",
            c.head("get", "/genesys/1/storage/x", b""),
            Error(405),
        ),
        case(
            "1,000-character method",
            c.head(&"X".repeat(1000), st, b""),
            Error(405),
        ),
        // --- content types ---
        case(
            "text/plain body",
            c.post(st, "text/plain", b"a=1"),
            Error(415),
        ),
        case(
            "body without Content-Type",
            c.post_raw(st, b"Content-Length: 3\r\n", b"a=1"),
            Error(415),
        ),
        case(
            "Content-Type of punctuation",
            c.post(st, "@@@", b"a=1"),
            Error(415),
        ),
        // --- the ORS service and the status push ---
        case(
            "ORS request with a JSON array body",
            c.post(&ors_request, JSON, b"[1]"),
            Error(400),
        ),
        case(
            "ORS request with a bad escape",
            c.post(&ors_request, FORM, b"_a=%zz"),
            Error(400),
        ),
        case(
            "status push without credentials",
            c.post(&push, JSON, b"{}"),
            Error(401),
        ),
        case(
            "status push that is not JSON",
            c.post_with(&push, JSON, admin.as_bytes(), b"not json"),
            Error(400),
        ),
        case(
            "status push over max_body_bytes",
            c.post_with(&push, JSON, admin.as_bytes(), &three_mb),
            Error(413),
        ),
        // --- pass-through paths: the web tier's, except bodies that cannot be passed on ---
        case(
            "bad escape outside the API roots",
            c.get("/app/%zz"),
            Backend,
        ),
        case(
            "TRACE outside the API roots",
            c.head("TRACE", "/app/x", b""),
            Backend,
        ),
        case(
            "broken chunk outside the API roots",
            c.chunked("/app/x", FORM, b"zz\r\na=1\r\n"),
            Error(400),
        ),
        case(
            "stalled body outside the API roots",
            c.post_raw("/app/x", b"Content-Length: 100\r\n", b"abc"),
            Error(408),
        ),
        case(
            "body cut short outside the API roots",
            c.post_raw("/app/x", b"Content-Length: 100\r\n", b"abc"),
            Closed,
        )
        .half_close(),
    ]
}
