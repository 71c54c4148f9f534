//! Documents as program items: a coach attaches a document of theirs (an
//! upload of kind `document`: a PDF, an image) to a program
//! ([`ProgramService::own_document`] checks it), and whoever holds the
//! program opens it with `media_link`
//! ([`ProgramService::entitled_to_attachment`], asked by the gateway).

use chalktalk_actors::store::StoreError;
use chalktalk_protocol::{MediaKind, MediaStage};

use super::{ProgramError, ProgramService};

impl ProgramService {
    /// `asset` must be a ready document of `coach` (when this node keeps
    /// assets).
    pub(crate) async fn own_document(&self, coach: &str, asset: &str) -> Result<(), ProgramError> {
        const FIELD: &str = "items.asset";
        match self.own_asset(FIELD, coach, asset).await? {
            None => Ok(()),
            Some(a) if a.kind != MediaKind::Document => Err(ProgramError::invalid(
                FIELD,
                format!("{asset} is not a document (upload it with kind `document`)"),
            )),
            Some(a) if a.stage != MediaStage::Ready => Err(ProgramError::invalid(
                FIELD,
                format!("{asset} is not ready"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Does `user` hold an entitlement in force to a program of `owner`
    /// that attaches document `asset`?
    pub async fn entitled_to_attachment(
        &self,
        user: &str,
        owner: &str,
        asset: &str,
    ) -> Result<bool, StoreError> {
        self.holds_program(user, |p| {
            p.coach == owner && p.attachments().any(|a| a == asset)
        })
        .await
    }
}
