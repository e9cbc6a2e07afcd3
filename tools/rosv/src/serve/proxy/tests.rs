use std::net::Ipv4Addr;

use super::*;

fn function(name: &str, path: &str) -> Route<'static> {
    Route::Function { name: Box::leak(name.to_string().into_boxed_str()), path: path.to_string() }
}

#[test]
fn the_first_segment_names_the_function_and_the_rest_is_its_path() {
    assert_eq!(route("/hello/a/b?x=1&y=%2F"), function("hello", "/a/b?x=1&y=%2F"));
    assert_eq!(route("/hello"), function("hello", "/"));
    assert_eq!(route("/hello/"), function("hello", "/"));
    assert_eq!(route("/hello?q"), function("hello", "/?q"));
    assert_eq!(route("/hello//x"), function("hello", "//x"));
    assert_eq!(route("/hello/a?b/c"), function("hello", "/a?b/c"));
    assert_eq!(route("http://example.com/hello/x?y"), function("hello", "/x?y"));
    assert_eq!(route("HTTP://example.com:8080/hello"), function("hello", "/"));
    assert_eq!(route("/_rosv/stats"), Route::Stats);
    assert_eq!(route("/_rosv/stats?pretty"), Route::Stats);
    assert_eq!(route("/_rosv/other"), function("_rosv", "/other"));
    for nowhere in
        ["/", "//x", "*", "", "/?q", "example.com:443", "http://example.com", "http://example.com?x"]
    {
        assert_eq!(route(nowhere), Route::Nowhere, "{nowhere}");
    }
}

fn head(method: &str, minor_version: u8, headers: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        method: method.into(),
        target: "/f/x".into(),
        minor_version,
        headers: headers.iter().map(|(name, value)| Header::new(name, *value)).collect(),
    }
}

#[test]
fn requests_reach_the_function_with_end_to_end_headers_and_the_client_address() {
    let request = head(
        "POST",
        1,
        &[
            ("Host", "example.com"),
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "hop"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Expect", "100-continue"),
            ("X-Forwarded-For", "10.1.1.1"),
            ("Accept", "*/*"),
            ("Upgrade", "websocket"),
        ],
    );
    let bytes = upstream_request(&request, "/x?y", b"body", IpAddr::from(Ipv4Addr::new(192, 0, 2, 7)));
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "POST /x?y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Forwarded-For: 10.1.1.1, 192.0.2.7\r\n\
         Content-Length: 4\r\nConnection: close\r\n\r\nbody"
    );
    let old = upstream_request(&head("GET", 0, &[]), "/", b"", IpAddr::from(Ipv4Addr::LOCALHOST));
    assert_eq!(
        String::from_utf8(old).unwrap(),
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let empty_post =
        upstream_request(&head("PUT", 1, &[("Host", "h")]), "/", b"", IpAddr::from(Ipv4Addr::LOCALHOST));
    assert!(String::from_utf8(empty_post).unwrap().contains("Content-Length: 0\r\n"));
}
