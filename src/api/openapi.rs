//! The OpenAPI document (generated from the handlers) and Swagger UI (assets vendored).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kyso", description = "Digital signature and certificate service"),
    paths(
        super::ops::healthz, super::ops::readyz, super::ops::metrics,
        super::pki::list_cas, super::pki::ca_file, super::pki::chain, super::pki::timestamp,
        super::pki::tsa_certificate, super::pki::ocsp_post, super::pki::ocsp_get, super::pki::crl,
        super::ledger::checkpoint, super::ledger::key, super::ledger::entry, super::ledger::search, super::ledger::inclusion, super::ledger::consistency,
        super::accounts::create, super::accounts::list, super::accounts::disable, super::accounts::enable,
        super::certificates::request, super::certificates::list, super::certificates::show,
        super::certificates::revoke, super::certificates::list_requests, super::certificates::approve,
        super::certificates::reject,
        super::signatures::sign, super::signatures::unlock, super::signatures::grant,
        super::signatures::grants, super::signatures::withdraw,
        super::pades::prepare, super::pades::finalize, super::verifications::verify,
        super::csc::info, super::csc::list, super::csc::credential_info, super::csc::authorize,
        super::csc::sign_hash,
    ),
    components(schemas(super::error::Problem)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/openapi.json",
            get(|| async { Json(ApiDoc::openapi()) }),
        )
        .merge(SwaggerUi::new("/api/docs").url("/api/docs/openapi.json", ApiDoc::openapi()))
}
