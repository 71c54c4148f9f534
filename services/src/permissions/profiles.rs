//! Coach and athlete profiles: validation (422 with fields) and storage in
//! the key-value port, namespace [`NS_PROFILE`], key = user id, value =
//! MessagePack (named) of [`Profile`].
//!
//! Visibility (`GET /api/v1/profiles/{user}`): coach profiles are visible to
//! every signed-in user; an athlete's profile to the athlete, admins and
//! coaches with an invited or active relationship with them; otherwise 404.

use std::sync::Arc;

use chalktalk_actors::store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use chalktalk_adapters::kv::{Kv, KvBatch};

pub const NS_PROFILE: &str = "profile";

const MAX_SPORTS: usize = 10;
const MAX_SPORT_LEN: usize = 40;
const MAX_BIO: usize = 2000;
const MAX_EXPERIENCE: u32 = 80;
/// Athlete levels.
pub const LEVELS: &[&str] = &["beginner", "intermediate", "advanced", "elite"];

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Profile {
    Coach {
        sports: Vec<String>,
        bio: String,
        experience_years: u32,
    },
    Athlete {
        sports: Vec<String>,
        level: String,
        bio: String,
    },
}

/// The body of `PUT /api/v1/profiles/me` (every field optional so that
/// missing ones are reported together, as `required`).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileInput {
    pub sports: Option<Vec<String>>,
    pub bio: Option<String>,
    pub experience_years: Option<i64>,
    pub level: Option<String>,
}

fn sports(fields: &mut Map<String, Value>, v: Option<Vec<String>>) -> Vec<String> {
    let Some(v) = v else {
        fields.insert("sports".into(), "required".into());
        return vec![];
    };
    let v: Vec<String> = v.into_iter().map(|s| s.trim().to_lowercase()).collect();
    if v.is_empty() || v.len() > MAX_SPORTS {
        fields.insert("sports".into(), format!("1 to {MAX_SPORTS} sports").into());
    } else if v.iter().any(|s| {
        s.is_empty() || s.chars().count() > MAX_SPORT_LEN || s.chars().any(char::is_control)
    }) {
        fields.insert(
            "sports".into(),
            format!("each sport is 1 to {MAX_SPORT_LEN} printable characters").into(),
        );
    }
    v
}

fn bio(fields: &mut Map<String, Value>, v: Option<String>) -> String {
    let v = v.unwrap_or_default();
    if v.chars().count() > MAX_BIO {
        fields.insert("bio".into(), format!("at most {MAX_BIO} characters").into());
    }
    v
}

/// Validates `input` as a coach's (`coach == true`) or an athlete's profile.
pub fn validate(coach: bool, input: ProfileInput) -> Result<Profile, Map<String, Value>> {
    let mut fields = Map::new();
    let sports = sports(&mut fields, input.sports);
    let bio = bio(&mut fields, input.bio);
    let profile = if coach {
        if input.level.is_some() {
            fields.insert("level".into(), "only athletes have a level".into());
        }
        let years = match input.experience_years {
            None => {
                fields.insert("experience_years".into(), "required".into());
                0
            }
            Some(y) if (0..=i64::from(MAX_EXPERIENCE)).contains(&y) => y as u32,
            Some(_) => {
                fields.insert(
                    "experience_years".into(),
                    format!("0 to {MAX_EXPERIENCE}").into(),
                );
                0
            }
        };
        Profile::Coach {
            sports,
            bio,
            experience_years: years,
        }
    } else {
        if input.experience_years.is_some() {
            fields.insert(
                "experience_years".into(),
                "only coaches have experience_years".into(),
            );
        }
        let level = input.level.unwrap_or_default();
        if !LEVELS.contains(&level.as_str()) {
            fields.insert(
                "level".into(),
                format!("one of {}", LEVELS.join(", ")).into(),
            );
        }
        Profile::Athlete { sports, level, bio }
    };
    if fields.is_empty() {
        Ok(profile)
    } else {
        Err(fields)
    }
}

/// Profiles in the key-value port.
#[derive(Clone)]
pub struct Profiles {
    kv: Option<Arc<dyn Kv>>,
}

impl Profiles {
    pub fn new(kv: Option<Arc<dyn Kv>>) -> Profiles {
        Profiles { kv }
    }

    pub async fn get(&self, user: &str) -> Result<Option<Profile>, StoreError> {
        let Some(kv) = &self.kv else { return Ok(None) };
        match kv.get(NS_PROFILE, user).await? {
            Some(b) => rmp_serde::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    pub async fn put(&self, user: &str, p: &Profile) -> Result<(), StoreError> {
        let Some(kv) = &self.kv else {
            return Err(StoreError::Unavailable(
                "no key-value store on this node".into(),
            ));
        };
        let b = rmp_serde::to_vec_named(p).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        kv.apply(KvBatch::default().put(NS_PROFILE, user, b))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> ProfileInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn coach_profile() {
        let p = validate(
            true,
            input(serde_json::json!({"sports":[" Squash "],"bio":"hi","experience_years":7})),
        )
        .unwrap();
        assert_eq!(
            p,
            Profile::Coach {
                sports: vec!["squash".into()],
                bio: "hi".into(),
                experience_years: 7
            }
        );
        let e = validate(
            true,
            input(serde_json::json!({"sports":[],"experience_years":-1,"level":"elite"})),
        )
        .unwrap_err();
        let keys: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(keys, ["experience_years", "level", "sports"]);
    }

    #[test]
    fn athlete_profile() {
        assert!(
            validate(
                false,
                input(serde_json::json!({"sports":["rowing"],"level":"elite"}))
            )
            .is_ok()
        );
        let e = validate(
            false,
            input(serde_json::json!({"level":"god","bio":"x".repeat(2001)})),
        )
        .unwrap_err();
        let keys: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(keys, ["bio", "level", "sports"]);
    }
}
