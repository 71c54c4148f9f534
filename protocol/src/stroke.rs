//! Live stroke previews: [`LiveStroke`], one batch of points of a stroke
//! still being drawn, and the two messages that carry it: [`StrokeIn`] (a
//! client's `points`, addressed to a room) and [`StrokeBy`] (the `points`
//! live event the room relays, signed with the drawing user).
//!
//! Both encode as one flat map, the address first (`{room|user, stroke,
//! batch, t_ms, style, points}`, after the tag their enum writes), and
//! decode in one pass straight from the input: no `#[serde(flatten)]`,
//! which would buffer every value into serde's `Content` tree on the hot
//! path that [`crate::tagfirst`] keeps free of it. The hand-written impls
//! behave as serde's derive did for the struct variants they replace: keys
//! in any order, unknown keys ignored, duplicate and missing fields named,
//! the array form accepted.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Point, RoomId, Style, UserId};

/// One batch of points of a stroke still being drawn (ephemeral, never
/// stored). The session checks it; the room relays the same value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveStroke {
    /// Client-chosen id of the stroke (a valid id); batches of one stroke
    /// share it.
    pub stroke: String,
    /// Position of this batch in the stroke, from 0.
    pub batch: u32,
    /// Video time the stroke is anchored to, in ms.
    pub t_ms: u64,
    pub style: Style,
    /// The points of this batch only (at most `max_points_per_batch`).
    pub points: Vec<Point>,
}

/// `ClientMsg::Points`: a stroke preview drawn in `room`. `style` may be
/// left out on the wire (the default style).
#[derive(Debug, Clone, PartialEq)]
pub struct StrokeIn {
    pub room: RoomId,
    pub live: LiveStroke,
}

/// `LiveEvent::Points`: a stroke preview drawn by `user`, relayed to the
/// other members of the room.
#[derive(Debug, Clone, PartialEq)]
pub struct StrokeBy {
    pub user: UserId,
    pub live: LiveStroke,
}

/// What tells [`StrokeIn`] and [`StrokeBy`] apart on the wire.
trait Addressed: Sized {
    /// The struct name handed to the serializer.
    const NAME: &'static str;
    /// The address key (`room` or `user`), written first.
    const KEY: &'static str;
    /// Every key, for `deserialize_struct`.
    const FIELDS: &'static [&'static str];
    /// What the message is, in errors (serde's derive named the variant).
    const EXPECTING: &'static str;
    /// `EXPECTING` for the array form.
    const EXPECTING_SEQ: &'static str;
    /// A missing `style` is the default style (else an error).
    const STYLE_DEFAULT: bool;
    fn parts(&self) -> (&str, &LiveStroke);
    fn from_parts(key: String, live: LiveStroke) -> Self;
}

impl Addressed for StrokeIn {
    const NAME: &'static str = "StrokeIn";
    const KEY: &'static str = "room";
    const FIELDS: &'static [&'static str] = &["room", "stroke", "batch", "t_ms", "style", "points"];
    const EXPECTING: &'static str = "struct variant ClientMsg::Points";
    const EXPECTING_SEQ: &'static str = "struct variant ClientMsg::Points with 6 elements";
    const STYLE_DEFAULT: bool = true;
    fn parts(&self) -> (&str, &LiveStroke) {
        (&self.room, &self.live)
    }
    fn from_parts(room: String, live: LiveStroke) -> Self {
        StrokeIn { room, live }
    }
}

impl Addressed for StrokeBy {
    const NAME: &'static str = "StrokeBy";
    const KEY: &'static str = "user";
    const FIELDS: &'static [&'static str] = &["user", "stroke", "batch", "t_ms", "style", "points"];
    const EXPECTING: &'static str = "struct variant LiveEvent::Points";
    const EXPECTING_SEQ: &'static str = "struct variant LiveEvent::Points with 6 elements";
    const STYLE_DEFAULT: bool = false;
    fn parts(&self) -> (&str, &LiveStroke) {
        (&self.user, &self.live)
    }
    fn from_parts(user: String, live: LiveStroke) -> Self {
        StrokeBy { user, live }
    }
}

fn serialize<T: Addressed, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    let (key, live) = v.parts();
    let mut st = s.serialize_struct(T::NAME, 6)?;
    st.serialize_field(T::KEY, key)?;
    st.serialize_field("stroke", &live.stroke)?;
    st.serialize_field("batch", &live.batch)?;
    st.serialize_field("t_ms", &live.t_ms)?;
    st.serialize_field("style", &live.style)?;
    st.serialize_field("points", &live.points)?;
    st.end()
}

impl Serialize for StrokeIn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self, s)
    }
}

impl Serialize for StrokeBy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for StrokeIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(Self::NAME, Self::FIELDS, Visitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for StrokeBy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(Self::NAME, Self::FIELDS, Visitor(PhantomData))
    }
}

/// A key of the map, as serde's derive reads it: by name (string or
/// bytes) or by index; anything else is ignored.
enum Field {
    Key,
    Stroke,
    Batch,
    TMs,
    Style,
    Points,
    Other,
}

impl Field {
    fn named<T: Addressed>(name: &[u8]) -> Field {
        match name {
            b"stroke" => Field::Stroke,
            b"batch" => Field::Batch,
            b"t_ms" => Field::TMs,
            b"style" => Field::Style,
            b"points" => Field::Points,
            n if n == T::KEY.as_bytes() => Field::Key,
            _ => Field::Other,
        }
    }
}

/// Reads a [`Field`] of `T`.
struct FieldSeed<T>(PhantomData<T>);

impl<'de, T: Addressed> DeserializeSeed<'de> for FieldSeed<T> {
    type Value = Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de, T: Addressed> de::Visitor<'de> for FieldSeed<T> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
        Ok(match v {
            0 => Field::Key,
            1 => Field::Stroke,
            2 => Field::Batch,
            3 => Field::TMs,
            4 => Field::Style,
            5 => Field::Points,
            _ => Field::Other,
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field::named::<T>(v.as_bytes()))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Field, E> {
        Ok(Field::named::<T>(v))
    }
}

/// Fills `slot` from the map's next value; a second one is an error.
fn put<'de, V: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<V>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

struct Visitor<T>(PhantomData<T>);

impl<'de, T: Addressed> de::Visitor<'de> for Visitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut key: Option<String> = None;
        let mut stroke: Option<String> = None;
        let mut batch: Option<u32> = None;
        let mut t_ms: Option<u64> = None;
        let mut style: Option<Style> = None;
        let mut points: Option<Vec<Point>> = None;
        while let Some(field) = map.next_key_seed(FieldSeed::<T>(PhantomData))? {
            match field {
                Field::Key => put(&mut key, T::KEY, &mut map)?,
                Field::Stroke => put(&mut stroke, "stroke", &mut map)?,
                Field::Batch => put(&mut batch, "batch", &mut map)?,
                Field::TMs => put(&mut t_ms, "t_ms", &mut map)?,
                Field::Style => put(&mut style, "style", &mut map)?,
                Field::Points => put(&mut points, "points", &mut map)?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // Missing fields are reported in declaration order, as the derive did.
        let missing = de::Error::missing_field;
        let key = key.ok_or_else(|| missing(T::KEY))?;
        let stroke = stroke.ok_or_else(|| missing("stroke"))?;
        let batch = batch.ok_or_else(|| missing("batch"))?;
        let t_ms = t_ms.ok_or_else(|| missing("t_ms"))?;
        let style = match style {
            Some(s) => s,
            None if T::STYLE_DEFAULT => Style::default(),
            None => return Err(missing("style")),
        };
        let points = points.ok_or_else(|| missing("points"))?;
        let live = LiveStroke {
            stroke,
            batch,
            t_ms,
            style,
            points,
        };
        Ok(T::from_parts(key, live))
    }

    /// The array form (`[tag, key, stroke, batch, t_ms, style?, points]`
    /// after the tag), which serde's derive accepts too.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let len = |i| de::Error::invalid_length(i, &T::EXPECTING_SEQ);
        let key = seq.next_element()?.ok_or_else(|| len(0))?;
        let stroke = seq.next_element()?.ok_or_else(|| len(1))?;
        let batch = seq.next_element()?.ok_or_else(|| len(2))?;
        let t_ms = seq.next_element()?.ok_or_else(|| len(3))?;
        let style = match seq.next_element()? {
            Some(s) => s,
            None if T::STYLE_DEFAULT => Style::default(),
            None => return Err(len(4)),
        };
        let points = seq.next_element()?.ok_or_else(|| len(5))?;
        let live = LiveStroke {
            stroke,
            batch,
            t_ms,
            style,
            points,
        };
        Ok(T::from_parts(key, live))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientFrame, ClientMsg, LiveEvent, ServerFrame};

    /// The enums as they were before [`LiveStroke`] (serde's derive on
    /// struct variants, through the same [`crate::tag_first!`]): the
    /// oracle the new impls must match, value for value and error for error.
    mod old {
        use crate::{Point, RoomId, Style, UserId};

        crate::tag_first! {
        tag = "t", remote = "ClientMsg", expecting = "a client message";
        #[derive(Debug, Clone, PartialEq)]
        pub enum ClientMsg {
            Points {
                room: RoomId,
                stroke: String,
                batch: u32,
                t_ms: u64,
                #[serde(default)]
                style: Style,
                points: Vec<Point>,
            },
        }
        }

        crate::tag_first! {
        tag = "k", remote = "LiveEvent", expecting = "a live event";
        #[derive(Debug, Clone, PartialEq)]
        pub enum LiveEvent {
            Points {
                user: UserId,
                stroke: String,
                batch: u32,
                t_ms: u64,
                style: Style,
                points: Vec<Point>,
            },
        }
        }
    }

    fn live() -> LiveStroke {
        LiveStroke {
            stroke: "s-1".into(),
            batch: 3,
            t_ms: 12_500,
            style: Style {
                color: 0x00ff00ff,
                width: 0.01,
            },
            points: vec![Point(0.25, 0.5), Point(0.75, 1.0)],
        }
    }

    fn client() -> ClientMsg {
        ClientMsg::Points(StrokeIn {
            room: "r-abc".into(),
            live: live(),
        })
    }

    fn event() -> LiveEvent {
        LiveEvent::Points(StrokeBy {
            user: "coach-1".into(),
            live: live(),
        })
    }

    fn old_client() -> old::ClientMsg {
        let l = live();
        old::ClientMsg::Points {
            room: "r-abc".into(),
            stroke: l.stroke,
            batch: l.batch,
            t_ms: l.t_ms,
            style: l.style,
            points: l.points,
        }
    }

    fn old_event() -> old::LiveEvent {
        let l = live();
        old::LiveEvent::Points {
            user: "coach-1".into(),
            stroke: l.stroke,
            batch: l.batch,
            t_ms: l.t_ms,
            style: l.style,
            points: l.points,
        }
    }

    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        crate::encode(v)
    }

    /// A MessagePack map (or array) written entry by entry, to put keys in
    /// any order.
    enum W {
        Str(&'static str),
        U(u64),
        Raw(Vec<u8>),
        Map(Vec<(W, W)>),
        Arr(Vec<W>),
    }

    impl W {
        fn bytes(&self) -> Vec<u8> {
            let mut b = Vec::new();
            self.write(&mut b);
            b
        }
        fn write(&self, b: &mut Vec<u8>) {
            match self {
                W::Str(s) => {
                    let _ = rmp::encode::write_str(b, s);
                }
                W::U(n) => {
                    let _ = rmp::encode::write_uint(b, *n);
                }
                W::Raw(r) => b.extend_from_slice(r),
                W::Map(entries) => {
                    let _ = rmp::encode::write_map_len(b, entries.len() as u32);
                    for (k, v) in entries {
                        k.write(b);
                        v.write(b);
                    }
                }
                W::Arr(items) => {
                    let _ = rmp::encode::write_array_len(b, items.len() as u32);
                    for v in items {
                        v.write(b);
                    }
                }
            }
        }
    }

    /// The entries of a `points` message: tag, address, then the fields.
    fn entries(tag: (&'static str, &'static str), key: &'static str) -> Vec<(W, W)> {
        let l = live();
        vec![
            (W::Str(tag.0), W::Str(tag.1)),
            (W::Str(key), W::Str("r-abc")),
            (W::Str("stroke"), W::Str("s-1")),
            (W::Str("batch"), W::U(3)),
            (W::Str("t_ms"), W::U(12_500)),
            (W::Str("style"), W::Raw(enc(&l.style))),
            (W::Str("points"), W::Raw(enc(&l.points))),
        ]
    }

    /// Decodes `bytes` as the new and the old enum; both must agree.
    fn same_client(bytes: &[u8]) -> Result<ClientMsg, String> {
        let new = rmp_serde::from_slice::<ClientMsg>(bytes).map_err(|e| e.to_string());
        let old = rmp_serde::from_slice::<old::ClientMsg>(bytes).map_err(|e| e.to_string());
        match (&new, old) {
            (
                Ok(ClientMsg::Points(n)),
                Ok(old::ClientMsg::Points {
                    room,
                    stroke,
                    batch,
                    t_ms,
                    style,
                    points,
                }),
            ) => {
                let o = StrokeIn {
                    room,
                    live: LiveStroke {
                        stroke,
                        batch,
                        t_ms,
                        style,
                        points,
                    },
                };
                assert_eq!(n, &o);
            }
            (Err(n), Err(o)) => assert_eq!(n, &o),
            (n, o) => panic!("new {n:?} but old {o:?}"),
        }
        new
    }

    fn same_event(bytes: &[u8]) -> Result<LiveEvent, String> {
        let new = rmp_serde::from_slice::<LiveEvent>(bytes).map_err(|e| e.to_string());
        let old = rmp_serde::from_slice::<old::LiveEvent>(bytes).map_err(|e| e.to_string());
        match (&new, old) {
            (
                Ok(LiveEvent::Points(n)),
                Ok(old::LiveEvent::Points {
                    user,
                    stroke,
                    batch,
                    t_ms,
                    style,
                    points,
                }),
            ) => {
                let o = StrokeBy {
                    user,
                    live: LiveStroke {
                        stroke,
                        batch,
                        t_ms,
                        style,
                        points,
                    },
                };
                assert_eq!(n, &o);
            }
            (Err(n), Err(o)) => assert_eq!(n, &o),
            (n, o) => panic!("new {n:?} but old {o:?}"),
        }
        new
    }

    #[test]
    fn encodes_byte_for_byte_as_the_flat_variants_did() {
        assert_eq!(enc(&client()), enc(&old_client()));
        assert_eq!(enc(&event()), enc(&old_event()));
        let frame = ServerFrame::Live {
            room: "r-abc".into(),
            ev: event(),
        };
        let json = serde_json::to_string(&frame).expect("json");
        assert!(
            json.starts_with(r#"{"t":"live","room":"r-abc","ev":{"k":"points","user":"coach-1","stroke":"s-1","batch":3,"t_ms":12500,"style":"#),
            "{json}"
        );
    }

    #[test]
    fn round_trips() {
        let frame = ClientFrame { id: 4, m: client() };
        assert_eq!(crate::decode_client(&enc(&frame)).expect("client"), frame);
        let frame = ServerFrame::Live {
            room: "r-abc".into(),
            ev: event(),
        };
        assert_eq!(crate::decode_server(&enc(&frame)).expect("server"), frame);
        assert_eq!(same_client(&enc(&client())), Ok(client()));
        assert_eq!(same_event(&enc(&event())), Ok(event()));
    }

    #[test]
    fn keys_decode_in_any_order() {
        let n = entries(("t", "points"), "room").len();
        // Every rotation, so the tag is first (fast path) or anywhere after.
        for shift in 0..n {
            let mut c = entries(("t", "points"), "room");
            c.rotate_left(shift);
            assert_eq!(same_client(&W::Map(c).bytes()), Ok(client()), "{shift}");
        }
        let mut reversed = entries(("t", "points"), "room");
        reversed[1..].reverse();
        assert_eq!(same_client(&W::Map(reversed).bytes()), Ok(client()));
        let mut e = entries(("k", "points"), "user");
        e[1].1 = W::Str("coach-1");
        e[1..].reverse();
        assert_eq!(same_event(&W::Map(e).bytes()), Ok(event()));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        for at in [1, 4, 7] {
            let mut c = entries(("t", "points"), "room");
            c.insert(at, (W::Str("extra"), W::Arr(vec![W::U(1), W::Str("x")])));
            assert_eq!(same_client(&W::Map(c).bytes()), Ok(client()), "{at}");
        }
        // An index beyond the fields is an unknown key too, as in the derive.
        let mut c = entries(("t", "points"), "room");
        c.push((W::U(9), W::U(0)));
        assert_eq!(same_client(&W::Map(c).bytes()), Ok(client()));
    }

    #[test]
    fn missing_and_duplicate_fields_are_named() {
        for (i, name) in ["room", "stroke", "batch", "t_ms", "points"]
            .iter()
            .enumerate()
        {
            let mut c = entries(("t", "points"), "room");
            c.remove(if i < 4 { i + 1 } else { 6 });
            let err = same_client(&W::Map(c).bytes()).expect_err(name);
            assert!(err.contains(&format!("missing field `{name}`")), "{err}");
        }
        let mut e = entries(("k", "points"), "user");
        e.remove(5);
        let err = same_event(&W::Map(e).bytes()).expect_err("no style");
        assert!(err.contains("missing field `style`"), "{err}");
        let mut c = entries(("t", "points"), "room");
        c.push((W::Str("batch"), W::U(4)));
        let err = same_client(&W::Map(c).bytes()).expect_err("twice");
        assert!(err.contains("duplicate field `batch`"), "{err}");
        // A wrong type fails as the derive's did (same_client compares).
        let mut c = entries(("t", "points"), "room");
        c[3].1 = W::Str("three");
        let err = same_client(&W::Map(c).bytes()).expect_err("type");
        assert!(err.contains("wrong msgpack marker"), "{err}");
        // And on the buffered path (tag last), where serde reports it.
        let mut c = entries(("t", "points"), "room");
        c[3].1 = W::Str("three");
        c.rotate_left(1);
        let err = same_client(&W::Map(c).bytes()).expect_err("type, tag last");
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn style_defaults_on_client_messages_only() {
        let mut c = entries(("t", "points"), "room");
        c.remove(5);
        let mut want = client();
        if let ClientMsg::Points(p) = &mut want {
            p.live.style = Style::default();
        }
        assert_eq!(same_client(&W::Map(c).bytes()), Ok(want));
        // Tag last (the buffered path) too.
        let mut c = entries(("t", "points"), "room");
        c.remove(5);
        c.rotate_left(1);
        let got = same_client(&W::Map(c).bytes()).expect("tag last");
        let ClientMsg::Points(p) = got else {
            panic!("{got:?}")
        };
        assert_eq!(p.live.style, Style::default());
    }

    #[test]
    fn array_form_decodes_as_the_derive_did() {
        let l = live();
        let full = |tag| {
            W::Arr(vec![
                W::Str(tag),
                W::Str("r-abc"),
                W::Str("s-1"),
                W::U(3),
                W::U(12_500),
                W::Raw(enc(&l.style)),
                W::Raw(enc(&l.points)),
            ])
        };
        assert_eq!(same_client(&full("points").bytes()), Ok(client()));
        let W::Arr(mut short) = full("points") else {
            unreachable!()
        };
        short.truncate(4);
        let err = same_client(&W::Arr(short).bytes()).expect_err("short");
        assert!(err.contains("invalid length 3"), "{err}");
        let W::Arr(mut no_points) = full("points") else {
            unreachable!()
        };
        no_points.truncate(6);
        assert!(same_client(&W::Arr(no_points).bytes()).is_err());
    }
}
