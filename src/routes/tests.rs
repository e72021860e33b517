//! The route table's cases: every path shape, method, root and spelling.

use super::*;

fn p() -> Vec<String> {
    vec!["/genesys/1".into(), "/GMS-web/gms/1".into()]
}

fn r(m: Method, path: &str) -> Route {
    route(&m, path, &p())
}

#[test]
fn service_routes() {
    assert_eq!(
        r(Method::POST, "/genesys/1/service/request-interaction"),
        Route::CreateService {
            service: "request-interaction".into()
        }
    );
    assert_eq!(
        r(Method::POST, "/GMS-web/gms/1/service/abc/status"),
        Route::ServiceRequest {
            id: "abc".into(),
            request: "status".into()
        }
    );
    assert_eq!(
        r(Method::DELETE, "/genesys/1/service/abc"),
        Route::DeleteService { id: "abc".into() }
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/service/abc"),
        Route::ServiceGet {
            service: "abc".into()
        }
    );
    assert_eq!(
        r(Method::PUT, "/genesys/1/service/abc"),
        Route::MethodNotAllowed {
            allow: "GET, POST, DELETE"
        }
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/service/abc/check-queue-position"),
        Route::ServiceRequest {
            id: "abc".into(),
            request: "check-queue-position".into()
        }
    );
    assert_eq!(
        r(Method::PUT, "/genesys/1/service/abc/x"),
        Route::MethodNotAllowed { allow: "GET, POST" }
    );
}

#[test]
fn per_service_storage_routes() {
    let id = || "abc".to_string();
    let key = || "k".to_string();
    for (m, path, want) in [
        (
            Method::GET,
            "storage",
            Route::ServiceStorageGetAll { id: id() },
        ),
        (
            Method::POST,
            "storage",
            Route::ServiceStorageUpdate { id: id() },
        ),
        (
            Method::GET,
            "storage/k",
            Route::ServiceStorageGetKey {
                id: id(),
                key: key(),
            },
        ),
        (
            Method::DELETE,
            "storage/k",
            Route::ServiceStorageDeleteKey {
                id: id(),
                key: key(),
            },
        ),
        (
            Method::GET,
            "storage/binary/k",
            Route::ServiceStorageBinary {
                id: id(),
                key: key(),
            },
        ),
        (
            Method::GET,
            "storage/binary",
            Route::ServiceStorageGetKey {
                id: id(),
                key: "binary".into(),
            },
        ),
        (
            Method::DELETE,
            "storage",
            Route::MethodNotAllowed { allow: "GET, POST" },
        ),
        (
            Method::POST,
            "storage/k",
            Route::MethodNotAllowed {
                allow: "GET, DELETE",
            },
        ),
        (
            Method::DELETE,
            "storage/binary/k",
            Route::MethodNotAllowed { allow: "GET" },
        ),
    ] {
        assert_eq!(
            r(m, &format!("/genesys/1/service/abc/{path}")),
            want,
            "{path}"
        );
    }
}

#[test]
fn callback_routes() {
    let cb = |m: Method, path: &str| r(m, &format!("/genesys/1/service/callback{path}"));
    assert_eq!(
        cb(Method::POST, "/cb"),
        Route::CallbackCreate {
            service: "cb".into()
        }
    );
    assert_eq!(
        cb(Method::GET, "/cb"),
        Route::CallbackQuery {
            service: Some("cb".into())
        }
    );
    assert_eq!(cb(Method::GET, ""), Route::CallbackQuery { service: None });
    assert_eq!(
        cb(Method::POST, ""),
        Route::MethodNotAllowed { allow: "GET" }
    );
    assert_eq!(
        cb(Method::PUT, "/cb/x"),
        Route::CallbackUpdate {
            service: "cb".into(),
            id: "x".into()
        }
    );
    assert_eq!(
        cb(Method::DELETE, "/cb/x"),
        Route::CallbackCancel {
            service: "cb".into(),
            id: "x".into()
        }
    );
    assert_eq!(
        cb(Method::GET, "/cb/x"),
        Route::MethodNotAllowed {
            allow: "PUT, DELETE"
        }
    );
    let v1 = Route::CallbackAvailability {
        service: "cb".into(),
        version: Version::V1,
    };
    assert_eq!(cb(Method::GET, "/cb/availability"), v1);
    assert_eq!(
        cb(Method::PUT, "/cb/availability"),
        Route::MethodNotAllowed { allow: "GET" }
    );
    assert_eq!(
        r(
            Method::GET,
            "/GMS-web/gms/1/service/callback/cb/availability"
        ),
        v1
    );
    let v2 = Route::CallbackAvailability {
        service: "cb".into(),
        version: Version::V2,
    };
    assert_eq!(
        r(Method::GET, "/genesys/2/service/callback/cb/availability"),
        v2
    );
    assert_eq!(
        r(Method::GET, "/genesys//2/service/callback/cb/availability"),
        v2
    );
    assert_eq!(
        r(Method::POST, "/genesys/2/service/callback/cb/availability"),
        Route::MethodNotAllowed { allow: "GET" }
    );
    assert_eq!(
        r(Method::GET, "/genesys/2/service/callback/cb"),
        Route::PassThrough
    );
    assert_eq!(r(Method::GET, "/genesys/2/index.html"), Route::PassThrough);
    assert_eq!(v2_root("/genesys/1").as_deref(), Some("/genesys/2"));
    assert_eq!(v2_root("/api"), None);
}

#[test]
fn storage_routes() {
    assert_eq!(
        r(Method::POST, "/genesys/1/storage/30"),
        Route::StorageCreate { ttl: "30".into() }
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/storage/x"),
        Route::StorageGetAll { id: "x".into() }
    );
    assert_eq!(
        r(Method::DELETE, "/genesys/1/storage/x"),
        Route::StorageDelete { id: "x".into() }
    );
    assert_eq!(
        r(Method::POST, "/genesys/1/storage/x/60"),
        Route::StorageUpdate {
            id: "x".into(),
            ttl: "60".into()
        }
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/storage/x/k%20y"),
        Route::StorageGetKey {
            id: "x".into(),
            key: "k y".into()
        }
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/storage/binary/x/pic"),
        Route::StorageBinary {
            id: "x".into(),
            key: "pic".into()
        }
    );
    assert_eq!(
        r(Method::POST, "/genesys/1/storage/custom/mine/60"),
        Route::StorageCustom {
            id: "mine".into(),
            ttl: "60".into()
        }
    );
    assert_eq!(
        r(Method::PUT, "/genesys/1/storage/30"),
        Route::MethodNotAllowed {
            allow: "GET, POST, DELETE"
        }
    );
    assert_eq!(
        r(Method::POST, "/genesys/1/storage/binary/x/pic"),
        Route::MethodNotAllowed { allow: "GET" }
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/storage/custom/x/60"),
        Route::MethodNotAllowed { allow: "POST" }
    );
}

#[test]
fn admin_routes() {
    assert_eq!(
        r(Method::GET, "/genesys/1/admin/node/status"),
        Route::NodeStatus
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/admin/node/health"),
        Route::NodeHealth
    );
    assert_eq!(
        r(Method::POST, "/genesys/1/admin/node/changestatus/OFFLINE"),
        Route::NodeChangeStatus {
            status: "OFFLINE".into()
        }
    );
    assert_eq!(
        r(Method::POST, "/genesys/1/admin/service/x/status"),
        Route::StatusPush { id: "x".into() }
    );
    for (method, path, route) in [
        ("GET", "queues", Route::CallbackAdminQueues),
        ("GET", "watermarks", Route::CallbackAdminWatermarks),
        ("POST", "cancel", Route::CallbackAdminCancel),
        ("POST", "reportcancelled", Route::CallbackAdminReport),
        ("POST", "queues", Route::MethodNotAllowed { allow: "GET" }),
        ("GET", "cancel", Route::MethodNotAllowed { allow: "POST" }),
        ("GET", "other", Route::NotFound),
    ] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        assert_eq!(
            r(method, &format!("/genesys/1/admin/callback/{path}")),
            route
        );
    }
    assert_eq!(
        r(Method::GET, "/GMS-web/gms/1/admin/servicetest.html"),
        Route::TestPage(PageFile::Html)
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/admin/servicetest.js"),
        Route::TestPage(PageFile::Script)
    );
    assert_eq!(
        r(Method::POST, "/genesys/1/admin/servicetest.html"),
        Route::NotFound
    );
    assert_eq!(
        r(Method::GET, "/genesys/1/admin/servicetest.htm"),
        Route::NotFound
    );
}

#[test]
fn other_paths() {
    assert_eq!(r(Method::GET, "/index.html"), Route::PassThrough);
    assert_eq!(r(Method::GET, "/genesys/10/service/x"), Route::PassThrough);
    assert_eq!(r(Method::GET, "/genesys/1"), Route::NotFound);
    assert_eq!(r(Method::GET, "/genesys/1/nothing"), Route::NotFound);
    assert_eq!(r(Method::POST, "/genesys/1/service/x/"), Route::NotFound);
    assert_eq!(
        r(Method::GET, "/genesys/1/service//callback/cb//availability"),
        Route::CallbackAvailability {
            service: "cb".into(),
            version: Version::V1
        }
    );
    assert!(matches!(
        r(Method::GET, "/genesys/1/storage/%zz"),
        Route::BadPath(_)
    ));
    assert!(matches!(
        r(Method::GET, "/genesys/1/storage/a%00b"),
        Route::BadPath(_)
    ));
    assert!(matches!(
        r(Method::GET, "/genesys/1/storage/a%2Fb"),
        Route::BadPath(_)
    ));
    assert!(matches!(
        r(Method::GET, "/genesys/1/storage/%ff"),
        Route::BadPath(_)
    ));
    assert!(matches!(
        r(Method::GET, "/genesys/1/storage/%f"),
        Route::BadPath(_)
    ));
}

/// Issue 15, item 4: every spelling of an API path is the API's; a pass-through path that
/// a lenient server would read as one is refused.
#[test]
fn paths_that_would_slip_past_the_api() {
    let admin = Route::NodeStatus;
    for path in [
        "/genesys//1/admin/node/status",
        "//genesys/1/admin/node/status",
        "/genesys/./1/admin/node/status",
        "/x/../genesys/1/admin/node/status",
        "/genesys/%31/admin/node/status",
        "/%67enesys/1/admin/node/status",
        "/GENESYS/1/admin/node/status",
        "/gms-web/gms/1/admin/node/status",
    ] {
        assert_eq!(r(Method::GET, path), admin, "{path}");
    }
    for path in [
        "/genesys%2f1/admin/node/status",
        "/genesys%2F1/admin/node/status",
        "/genesys/1%2fadmin/node/status",
        "/genesys/1;x/admin/node/status",
        "/genesys;x/1/admin/node/status",
        "/genesys/1\\admin/node/status",
        "/genesys%5c1/admin/node/status",
    ] {
        assert!(matches!(r(Method::GET, path), Route::BadPath(_)), "{path}");
    }
    for path in [
        "/app/a;b",
        "/static/x%2Fy",
        "/genesys/10/x",
        "/app\\x",
        "/app/%zz",
    ] {
        assert_eq!(r(Method::GET, path), Route::PassThrough, "{path}");
    }
}

/// Under a root as sent, `.` and `..` are names: no climbing from one API path to another.
#[test]
fn dot_segments_under_a_root_are_names() {
    assert_eq!(
        r(Method::GET, "/genesys/1/storage/x/.."),
        Route::StorageGetKey {
            id: "x".into(),
            key: "..".into()
        }
    );
    assert_eq!(
        r(
            Method::POST,
            "/genesys/1/service/../admin/node/changestatus/OFFLINE"
        ),
        Route::NotFound
    );
}
