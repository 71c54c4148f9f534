//! Pure review-room state: members, annotations, playback, per-user undo and
//! redo stacks and the op-id idempotency window. `plan` turns a requested op
//! into effects without changing anything; `absorb` applies a sequenced
//! event. Rebuilding a room from its log is `absorb` over the events, so the
//! live path and recovery cannot disagree.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chalktalk_protocol::annotation::{Invalid, MAX_VIDEO_MS};
use chalktalk_protocol::{
    Annotation, Effect, ErrorCode, Limits, PlaybackState, Role, RoomEvent, RoomOp, RoomSnapshot,
    UserId, valid_id,
};
use serde::{Deserialize, Serialize};

use crate::store::RoomMeta;

/// Undo entries kept per user.
const UNDO_DEPTH: usize = 100;
/// Op ids remembered for idempotency.
const OP_ID_WINDOW: usize = 20_000;
/// Most annotations one room holds (an `add` beyond: `conflict`).
pub const MAX_ROOM_ANNOTATIONS: usize = 20_000;
/// Most stroke points one room holds, all annotations together (about
/// 44 MB of snapshot, 170 pages; an `add`/`update` beyond: `conflict`).
pub const MAX_ROOM_POINTS: u64 = 4_000_000;

/// What an annotation counts against [`MAX_ROOM_POINTS`]: its points for a
/// stroke, 1 for any other shape.
fn weight(a: &Annotation) -> u64 {
    match &a.shape {
        chalktalk_protocol::Shape::Stroke { points } => points.len() as u64,
        _ => 1,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UndoEntry {
    /// The seq of the event this entry reverts (or re-applies).
    seq: u64,
    effects: Vec<Effect>,
}

/// What `plan` decided: the effects to record for an op.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub target: Option<u64>,
    pub effects: Vec<Effect>,
}

/// The state of one review room at `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomState {
    pub seq: u64,
    pub meta: RoomMeta,
    pub members: BTreeSet<UserId>,
    pub annotations: BTreeMap<String, Annotation>,
    pub playback: PlaybackState,
    undo: HashMap<UserId, Vec<UndoEntry>>,
    redo: HashMap<UserId, Vec<UndoEntry>>,
    op_ids: HashMap<String, u64>,
    op_order: VecDeque<String>,
    /// Sum of [`weight`] over `annotations` (not stored: [`Self::recounted`]).
    #[serde(skip)]
    points: u64,
}

fn err(code: ErrorCode, msg: impl Into<String>) -> Invalid {
    Invalid::new(code, msg)
}

fn op_key(by: &str, op_id: &str) -> String {
    format!("{by}\u{0}{op_id}")
}

fn valid_position(p: f64) -> Result<f64, Invalid> {
    if p.is_finite() && (0.0..=MAX_VIDEO_MS as f64).contains(&p) {
        Ok(p)
    } else {
        Err(err(
            ErrorCode::Invalid,
            "position_ms must be within 0..=24h",
        ))
    }
}

impl RoomState {
    /// A new room: the owner is the only member and leads playback.
    pub fn new(meta: RoomMeta) -> Self {
        RoomState {
            seq: 0,
            members: BTreeSet::from([meta.owner.clone()]),
            annotations: BTreeMap::new(),
            playback: PlaybackState {
                playing: false,
                position_ms: 0.0,
                rate: 1.0,
                at_server_ms: meta.created_ms,
                leader: meta.owner.clone(),
            },
            meta,
            undo: HashMap::new(),
            redo: HashMap::new(),
            op_ids: HashMap::new(),
            op_order: VecDeque::new(),
            points: 0,
        }
    }

    /// A state read back from a stored snapshot, with its point count.
    pub fn recounted(mut self) -> Self {
        self.points = self.annotations.values().map(weight).sum();
        self
    }

    /// Stroke points (and other shapes, 1 each) the room holds.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Refuses an annotation that would take the room past its caps;
    /// `replaces` is the annotation it updates, if any.
    fn fits(&self, ann: &Annotation, replaces: Option<&Annotation>) -> Result<(), Invalid> {
        if replaces.is_none() && self.annotations.len() >= MAX_ROOM_ANNOTATIONS {
            return Err(err(
                ErrorCode::Conflict,
                format!(
                    "the room is full: it holds the maximum of {MAX_ROOM_ANNOTATIONS} annotations; delete or clear some first"
                ),
            ));
        }
        let after = self.points - replaces.map_or(0, weight) + weight(ann);
        if after > MAX_ROOM_POINTS {
            return Err(err(
                ErrorCode::Conflict,
                format!(
                    "the room is full: its annotations would hold {after} points, above the maximum of {MAX_ROOM_POINTS}; delete or clear some first"
                ),
            ));
        }
        Ok(())
    }

    /// The seq an op id was applied under, if it is in the window.
    pub fn seen(&self, by: &str, op_id: &str) -> Option<u64> {
        self.op_ids.get(&op_key(by, op_id)).copied()
    }

    pub fn is_member(&self, user: &str) -> bool {
        self.members.contains(user)
    }

    fn playback_at(&self, now_ms: u64) -> f64 {
        let p = &self.playback;
        if p.playing {
            let elapsed = now_ms.saturating_sub(p.at_server_ms) as f64;
            (p.position_ms + elapsed * f64::from(p.rate)).min(MAX_VIDEO_MS as f64)
        } else {
            p.position_ms
        }
    }

    fn playback_effect(&self, now_ms: u64, f: impl FnOnce(&mut PlaybackState)) -> Vec<Effect> {
        let mut state = self.playback.clone();
        state.position_ms = self.playback_at(now_ms);
        state.at_server_ms = now_ms;
        f(&mut state);
        vec![Effect::Playback { state }]
    }

    /// Decides what `op` by `by` would change, or why it is refused.
    pub fn plan(
        &self,
        by: &str,
        role: Role,
        op: &RoomOp,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Planned, Invalid> {
        let owner = by == self.meta.owner || role == Role::Admin;
        let leader = by == self.playback.leader;
        let plain = |effects| {
            Ok(Planned {
                target: None,
                effects,
            })
        };
        match op {
            RoomOp::Add { ann } => {
                ann.validate(limits)?;
                if self.annotations.contains_key(&ann.id) {
                    return Err(err(
                        ErrorCode::Conflict,
                        format!("annotation `{}` exists; use update", ann.id),
                    ));
                }
                self.fits(ann, None)?;
                plain(vec![Effect::Put {
                    ann: self.finished(ann, by),
                }])
            }
            RoomOp::Update { ann } => {
                ann.validate(limits)?;
                let Some(old) = self.annotations.get(&ann.id) else {
                    return Err(err(
                        ErrorCode::NotFound,
                        format!("no annotation `{}`", ann.id),
                    ));
                };
                if old.author != by {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "you can only change your own annotations",
                    ));
                }
                self.fits(ann, Some(old))?;
                plain(vec![Effect::Put {
                    ann: self.finished(ann, by),
                }])
            }
            RoomOp::Delete { id } => {
                let Some(old) = self.annotations.get(id) else {
                    return Err(err(ErrorCode::NotFound, format!("no annotation `{id}`")));
                };
                if old.author != by && !owner {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "only the author or the room owner can delete an annotation",
                    ));
                }
                plain(vec![Effect::Remove { id: id.clone() }])
            }
            RoomOp::Undo | RoomOp::Redo => {
                let stack = if matches!(op, RoomOp::Undo) {
                    &self.undo
                } else {
                    &self.redo
                };
                match stack.get(by).and_then(|s| s.last()) {
                    Some(e) => Ok(Planned {
                        target: Some(e.seq),
                        effects: e.effects.clone(),
                    }),
                    None => Err(err(ErrorCode::Conflict, "nothing to undo or redo")),
                }
            }
            RoomOp::Clear { range } => {
                if !owner {
                    return Err(err(ErrorCode::Forbidden, "only the room owner can clear"));
                }
                if let Some(r) = range
                    && r.from_ms > r.to_ms
                {
                    return Err(err(
                        ErrorCode::Invalid,
                        "range.from_ms must be <= range.to_ms",
                    ));
                }
                plain(
                    self.annotations
                        .values()
                        .filter(|a| range.as_ref().is_none_or(|r| a.overlaps(r)))
                        .map(|a| Effect::Remove { id: a.id.clone() })
                        .collect(),
                )
            }
            RoomOp::Play { .. }
            | RoomOp::Pause { .. }
            | RoomOp::Seek { .. }
            | RoomOp::Rate { .. }
            | RoomOp::Step { .. }
                if !leader =>
            {
                Err(err(
                    ErrorCode::Forbidden,
                    format!(
                        "only the leader ({}) controls playback",
                        self.playback.leader
                    ),
                ))
            }
            RoomOp::Play { position_ms } => {
                let p = valid_position(*position_ms)?;
                plain(self.playback_effect(now_ms, |s| {
                    s.playing = true;
                    s.position_ms = p;
                }))
            }
            RoomOp::Pause { position_ms } => {
                let p = valid_position(*position_ms)?;
                plain(self.playback_effect(now_ms, |s| {
                    s.playing = false;
                    s.position_ms = p;
                }))
            }
            RoomOp::Seek { position_ms } => {
                let p = valid_position(*position_ms)?;
                plain(self.playback_effect(now_ms, |s| s.position_ms = p))
            }
            RoomOp::Rate { rate } => {
                if !(rate.is_finite() && (0.0625..=4.0).contains(rate)) {
                    return Err(err(ErrorCode::Invalid, "rate must be within 0.0625..=4"));
                }
                plain(self.playback_effect(now_ms, |s| s.rate = *rate))
            }
            RoomOp::Step { frames } => {
                if *frames == 0 || frames.abs() > 600 {
                    return Err(err(
                        ErrorCode::Invalid,
                        "frames must be within -600..=600, not 0",
                    ));
                }
                let frame_ms = 1000.0 / f64::from(self.meta.fps);
                plain(self.playback_effect(now_ms, |s| {
                    s.playing = false;
                    let p = s.position_ms + f64::from(*frames) * frame_ms;
                    s.position_ms = p.clamp(0.0, MAX_VIDEO_MS as f64);
                }))
            }
            RoomOp::HandOver { to } => {
                if !leader && !owner {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "only the leader or the owner can hand over control",
                    ));
                }
                if !self.is_member(to) {
                    return Err(err(ErrorCode::NotMember, format!("`{to}` is not a member")));
                }
                plain(self.playback_effect(now_ms, |s| s.leader = to.clone()))
            }
            RoomOp::Invite { user } => {
                if !owner {
                    return Err(err(ErrorCode::Forbidden, "only the room owner can invite"));
                }
                if !valid_id(user) {
                    return Err(err(ErrorCode::Invalid, "user must be a valid id"));
                }
                if self.is_member(user) {
                    return Err(err(
                        ErrorCode::Conflict,
                        format!("`{user}` is already a member"),
                    ));
                }
                if self.members.len() >= limits.max_members as usize {
                    return Err(err(ErrorCode::Conflict, "the room is full"));
                }
                plain(vec![Effect::Member { user: user.clone() }])
            }
            RoomOp::Leave => {
                if by == self.meta.owner {
                    return Err(err(
                        ErrorCode::Conflict,
                        "the owner cannot leave their room",
                    ));
                }
                if !self.is_member(by) {
                    return Err(err(ErrorCode::NotMember, "you are not a member"));
                }
                plain(self.unmember(by, now_ms))
            }
            RoomOp::Remove { user } => {
                if !owner {
                    return Err(err(
                        ErrorCode::Forbidden,
                        "only the room owner can remove a member",
                    ));
                }
                if user == &self.meta.owner {
                    return Err(err(ErrorCode::Conflict, "the owner cannot be removed"));
                }
                if !self.is_member(user) {
                    return Err(err(
                        ErrorCode::NotMember,
                        format!("`{user}` is not a member"),
                    ));
                }
                plain(self.unmember(user, now_ms))
            }
        }
    }

    /// The effects of `user` leaving: playback control goes back to the
    /// owner if `user` had it.
    fn unmember(&self, user: &str, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::with_capacity(2);
        if self.playback.leader == user {
            effects.extend(self.playback_effect(now_ms, |s| s.leader = self.meta.owner.clone()));
        }
        effects.push(Effect::Unmember {
            user: user.to_string(),
        });
        effects
    }

    fn finished(&self, ann: &Annotation, by: &str) -> Annotation {
        let mut a = ann.clone();
        a.author = by.to_string();
        a.finish(self.meta.aspect);
        a
    }

    fn inverse(&self, effects: &[Effect]) -> Vec<Effect> {
        effects
            .iter()
            .rev()
            .filter_map(|e| match e {
                Effect::Put { ann } => Some(match self.annotations.get(&ann.id) {
                    Some(prev) => Effect::Put { ann: prev.clone() },
                    None => Effect::Remove { id: ann.id.clone() },
                }),
                Effect::Remove { id } => self
                    .annotations
                    .get(id)
                    .map(|prev| Effect::Put { ann: prev.clone() }),
                Effect::Playback { .. } | Effect::Member { .. } | Effect::Unmember { .. } => None,
            })
            .collect()
    }

    fn push(stack: &mut HashMap<UserId, Vec<UndoEntry>>, user: &str, entry: UndoEntry) {
        let s = stack.entry(user.to_string()).or_default();
        if s.len() == UNDO_DEPTH {
            s.remove(0);
        }
        s.push(entry);
    }

    /// Applies a sequenced event (live or replayed from the log).
    pub fn absorb(&mut self, ev: &RoomEvent) {
        let inverse = self.inverse(&ev.effects);
        for e in &ev.effects {
            match e {
                Effect::Put { ann } => {
                    self.points += weight(ann);
                    if let Some(old) = self.annotations.insert(ann.id.clone(), ann.clone()) {
                        self.points -= weight(&old);
                    }
                }
                Effect::Remove { id } => {
                    if let Some(old) = self.annotations.remove(id) {
                        self.points -= weight(&old);
                    }
                }
                Effect::Playback { state } => self.playback = state.clone(),
                Effect::Member { user } => {
                    self.members.insert(user.clone());
                }
                Effect::Unmember { user } => {
                    self.members.remove(user);
                    self.undo.remove(user);
                    self.redo.remove(user);
                }
            }
        }
        let by = ev.by.as_str();
        match &ev.op {
            RoomOp::Add { .. } | RoomOp::Update { .. } | RoomOp::Delete { .. } => {
                Self::push(
                    &mut self.undo,
                    by,
                    UndoEntry {
                        seq: ev.seq,
                        effects: inverse,
                    },
                );
                self.redo.remove(by);
            }
            RoomOp::Undo => {
                self.undo.get_mut(by).and_then(|s| s.pop());
                let target = ev.target.unwrap_or(ev.seq);
                Self::push(
                    &mut self.redo,
                    by,
                    UndoEntry {
                        seq: target,
                        effects: inverse,
                    },
                );
            }
            RoomOp::Redo => {
                self.redo.get_mut(by).and_then(|s| s.pop());
                let target = ev.target.unwrap_or(ev.seq);
                Self::push(
                    &mut self.undo,
                    by,
                    UndoEntry {
                        seq: target,
                        effects: inverse,
                    },
                );
            }
            _ => {}
        }
        let key = op_key(by, &ev.op_id);
        if self.op_ids.insert(key.clone(), ev.seq).is_none() {
            self.op_order.push_back(key);
            if self.op_order.len() > OP_ID_WINDOW
                && let Some(old) = self.op_order.pop_front()
            {
                self.op_ids.remove(&old);
            }
        }
        self.seq = ev.seq;
    }

    /// The client-facing snapshot of this state.
    pub fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            annotations: self.annotations.values().cloned().collect(),
            ..self.snapshot_without_annotations()
        }
    }

    /// The snapshot's head: everything but the annotations (paged joins).
    pub fn snapshot_without_annotations(&self) -> RoomSnapshot {
        RoomSnapshot {
            seq: self.seq,
            video_id: self.meta.video_id.clone(),
            owner: self.meta.owner.clone(),
            aspect: self.meta.aspect,
            fps: self.meta.fps,
            members: self.members.iter().cloned().collect(),
            annotations: Vec::new(),
            playback: self.playback.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chalktalk_protocol::{Point, Shape, Style, TimeRange};

    fn meta() -> RoomMeta {
        RoomMeta {
            id: "r".into(),
            video_id: "v".into(),
            owner: "coach".into(),
            aspect: 1.0,
            fps: 25.0,
            created_ms: 1000,
        }
    }

    fn line(id: &str, t_ms: u64) -> Annotation {
        Annotation {
            id: id.into(),
            author: String::new(),
            t_ms,
            dur_ms: Some(1000),
            style: Style::default(),
            shape: Shape::Line {
                a: Point(0.1, 0.1),
                b: Point(0.9, 0.9),
            },
        }
    }

    fn stroke(id: &str, points: usize) -> Annotation {
        Annotation {
            shape: Shape::Stroke {
                points: vec![Point(0.5, 0.5); points],
            },
            ..line(id, 0)
        }
    }

    #[test]
    fn a_room_refuses_annotations_past_its_caps_and_counts_points() {
        let mut s = RoomState::new(meta());
        let full = (MAX_ROOM_POINTS / 4096) as usize;
        for i in 0..full {
            let ann = stroke(&format!("s{i}"), 4096);
            run(&mut s, "coach", RoomOp::Add { ann }).unwrap();
        }
        assert_eq!(s.points(), full as u64 * 4096);
        let e = run(
            &mut s,
            "coach",
            RoomOp::Add {
                ann: stroke("over", 4096),
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
        assert!(e.message.contains("the room is full"), "{}", e.message);
        // Growing a stroke past the cap is refused too; shrinking is fine.
        let grow = RoomOp::Update {
            ann: stroke("s0", 4096 + 4000),
        };
        assert!(
            s.plan(
                "coach",
                Role::Coach,
                &grow,
                5000,
                &Limits {
                    max_points_per_stroke: 9000,
                    ..Limits::default()
                }
            )
            .is_err()
        );
        run(
            &mut s,
            "coach",
            RoomOp::Update {
                ann: stroke("s0", 10),
            },
        )
        .unwrap();
        assert_eq!(s.points(), (full as u64 - 1) * 4096 + 10);
        run(&mut s, "coach", RoomOp::Delete { id: "s1".into() }).unwrap();
        run(
            &mut s,
            "coach",
            RoomOp::Add {
                ann: stroke("fits", 4096),
            },
        )
        .unwrap();
        // Undo of the delete puts s1 back: the count follows every effect,
        // and a state read back from its snapshot bytes counts the same.
        run(&mut s, "coach", RoomOp::Undo).unwrap();
        let bytes = rmp_serde::to_vec_named(&s).unwrap();
        let back = rmp_serde::from_slice::<RoomState>(&bytes)
            .unwrap()
            .recounted();
        assert_eq!(back.points(), s.points());
        assert_eq!(s.points(), s.annotations.values().map(weight).sum::<u64>());

        let mut s = RoomState::new(meta());
        for i in 0..MAX_ROOM_ANNOTATIONS {
            run(
                &mut s,
                "coach",
                RoomOp::Add {
                    ann: line(&format!("l{i}"), 0),
                },
            )
            .unwrap();
        }
        let e = run(
            &mut s,
            "coach",
            RoomOp::Add {
                ann: line("one-more", 0),
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict);
    }

    /// Plans and absorbs like the room actor does.
    fn run(s: &mut RoomState, by: &str, op: RoomOp) -> Result<RoomEvent, Invalid> {
        let role = if by == "coach" {
            Role::Coach
        } else {
            Role::Athlete
        };
        let p = s.plan(by, role, &op, 5000, &Limits::default())?;
        let ev = RoomEvent {
            seq: s.seq + 1,
            by: by.into(),
            op_id: format!("op{}", s.seq + 1),
            at_ms: 5000,
            op,
            target: p.target,
            effects: p.effects,
        };
        s.absorb(&ev);
        Ok(ev)
    }

    #[test]
    fn undo_redo_walk_back_and_forth() {
        let mut s = RoomState::new(meta());
        run(&mut s, "coach", RoomOp::Add { ann: line("a", 0) }).unwrap();
        let mut moved = line("a", 0);
        moved.shape = Shape::Line {
            a: Point(0.2, 0.2),
            b: Point(0.3, 0.3),
        };
        run(&mut s, "coach", RoomOp::Update { ann: moved.clone() }).unwrap();
        let after_update = s.annotations.clone();
        let u = run(&mut s, "coach", RoomOp::Undo).unwrap();
        assert_eq!(u.target, Some(2));
        assert_eq!(s.annotations["a"].shape, line("a", 0).shape);
        run(&mut s, "coach", RoomOp::Undo).unwrap();
        assert!(s.annotations.is_empty());
        assert_eq!(
            run(&mut s, "coach", RoomOp::Undo).unwrap_err().code,
            ErrorCode::Conflict
        );
        run(&mut s, "coach", RoomOp::Redo).unwrap();
        run(&mut s, "coach", RoomOp::Redo).unwrap();
        assert_eq!(s.annotations, after_update);
        // A new op clears the redo stack.
        run(&mut s, "coach", RoomOp::Undo).unwrap();
        run(&mut s, "coach", RoomOp::Add { ann: line("b", 0) }).unwrap();
        assert_eq!(
            run(&mut s, "coach", RoomOp::Redo).unwrap_err().code,
            ErrorCode::Conflict
        );
    }

    #[test]
    fn replaying_the_log_rebuilds_the_same_state() {
        let mut live = RoomState::new(meta());
        let mut log = vec![
            run(&mut live, "coach", RoomOp::Invite { user: "ath".into() }).unwrap(),
            run(&mut live, "coach", RoomOp::Add { ann: line("a", 0) }).unwrap(),
            run(
                &mut live,
                "ath",
                RoomOp::Add {
                    ann: line("b", 5000),
                },
            )
            .unwrap(),
            run(&mut live, "ath", RoomOp::Undo).unwrap(),
            run(&mut live, "coach", RoomOp::Rate { rate: 0.25 }).unwrap(),
        ];
        log.push(run(&mut live, "ath", RoomOp::Redo).unwrap());
        let mut rebuilt = RoomState::new(meta());
        for ev in &log {
            rebuilt.absorb(ev);
        }
        assert_eq!(rebuilt, live);
        assert_eq!(rebuilt.seen("ath", "op3"), Some(3));
    }

    #[test]
    fn permissions() {
        let mut s = RoomState::new(meta());
        run(&mut s, "coach", RoomOp::Invite { user: "ath".into() }).unwrap();
        run(&mut s, "coach", RoomOp::Add { ann: line("a", 0) }).unwrap();
        let e = run(&mut s, "ath", RoomOp::Update { ann: line("a", 0) }).unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        let e = run(&mut s, "ath", RoomOp::Delete { id: "a".into() }).unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        let e = run(&mut s, "ath", RoomOp::Clear { range: None }).unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        let e = run(&mut s, "ath", RoomOp::Seek { position_ms: 1.0 }).unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        run(&mut s, "coach", RoomOp::HandOver { to: "ath".into() }).unwrap();
        run(&mut s, "ath", RoomOp::Seek { position_ms: 1.0 }).unwrap();
        let e = run(
            &mut s,
            "coach",
            RoomOp::HandOver {
                to: "nobody".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::NotMember);
    }

    #[test]
    fn clear_by_range_and_playback_clock() {
        let mut s = RoomState::new(meta());
        run(
            &mut s,
            "coach",
            RoomOp::Add {
                ann: line("early", 0),
            },
        )
        .unwrap();
        run(
            &mut s,
            "coach",
            RoomOp::Add {
                ann: line("late", 60_000),
            },
        )
        .unwrap();
        let ev = run(
            &mut s,
            "coach",
            RoomOp::Clear {
                range: Some(TimeRange {
                    from_ms: 50_000,
                    to_ms: 70_000,
                }),
            },
        )
        .unwrap();
        assert_eq!(ev.effects, vec![Effect::Remove { id: "late".into() }]);
        assert!(s.annotations.contains_key("early"));
        run(
            &mut s,
            "coach",
            RoomOp::Play {
                position_ms: 1000.0,
            },
        )
        .unwrap();
        // Step pauses and moves one frame (40 ms at 25 fps) from "now".
        run(&mut s, "coach", RoomOp::Step { frames: 1 }).unwrap();
        assert!(!s.playback.playing);
        assert!((s.playback.position_ms - 1040.0).abs() < 1e-9);
    }
}
