//! Access: who may do what. The ACL of outbound rows ([`acl`]), self-modification approvals
//! ([`approvals`]), questions and their cards ([`questions`]), and owner pairing ([`pairing`]).
//! Users and roles live in the central DB (`crate::db::users`).

pub mod acl;
pub mod approvals;
pub mod pairing;
pub mod questions;
