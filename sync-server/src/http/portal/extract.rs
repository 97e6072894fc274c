//! Request extractors whose refusals answer like every other refusal of the API: JSON
//! `{code, message}`, status 400, documented in the OpenAPI document ([`BadRequests`]).
//! axum's own `Json` and `Query` answer a body that is not JSON, a missing content type or a
//! mistyped field in plain text, with 415 or 422, which no client of ours could read.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr, ResponseBuilder};

use crate::http::ApiError;

/// A JSON request body (`Content-Type: application/json`).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(ApiError::bad_request(match e {
                JsonRejection::MissingJsonContentType(_) => {
                    "Send the request body as JSON, with Content-Type: application/json.".to_owned()
                }
                JsonRejection::JsonSyntaxError(_) => {
                    "The request body is not valid JSON.".to_owned()
                }
                JsonRejection::JsonDataError(d) => {
                    format!(
                        "The request body does not have the fields this needs: {}",
                        d.body_text()
                    )
                }
                other => format!("The request body could not be read: {}", other.body_text()),
            })),
        }
    }
}

/// The query string's parameters.
pub(crate) struct Params<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("The address's parameters are not valid: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Documents the 400 answer on every operation that reads a body or query parameters and does
/// not document one itself.
pub(crate) struct BadRequests;

impl utoipa::Modify for BadRequests {
    fn modify(&self, doc: &mut OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                document_400(op);
            }
        }
    }
}

fn document_400(op: &mut Operation) {
    let takes_input =
        op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if !takes_input || op.responses.responses.contains_key("400") {
        return;
    }
    let response = ResponseBuilder::new()
        .description("The request is not valid: not JSON, a missing or mistyped field or parameter")
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build(),
        )
        .build();
    op.responses
        .responses
        .insert("400".to_owned(), RefOr::T(response));
}
