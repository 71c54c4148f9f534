//! Tag-first decoding of the internally tagged enums (`{"t": "points", ...}`).
//!
//! serde's derive for `#[serde(tag = "t")]` first buffers the whole map into
//! a `Content` tree (every point a boxed value), then decodes that tree again
//! (serde-rs/serde#1495): ~12,000 instructions for one 16-point `points`
//! frame, the largest single cost of a delivery and of a durable op.
//! Every encoder we know of (serde's own, ours, @msgpack/msgpack with the
//! key order of the object) writes the tag first, so [`tag_first!`] reads
//! the first key and, when it is the tag, decodes the variant's fields
//! straight from the input. A map whose tag comes later still decodes, the
//! same as before, through serde's buffering path.
//!
//! [`tag_first!`] writes the enum once and derives three things from that
//! one definition: `Serialize` (internally tagged, unchanged), a private
//! externally tagged remote mirror (the fast path, fed by [`Variant`]) and
//! a private internally tagged remote mirror (the any-order path). Remote
//! derives construct the real enum, so the three cannot drift apart.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{CowStrDeserializer, MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess};
use serde::forward_to_deserialize_any;

/// Implemented by [`tag_first!`]: the two decoders of one enum.
pub trait TagFirstEnum<'de>: Sized {
    /// The tag key (`t` or `k`).
    const TAG: &'static str;
    /// What the enum is, for error messages.
    const EXPECTING: &'static str;
    /// Decodes from an enum access whose variant is the tag's value.
    fn tag_first<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    /// Decodes from a map (or array) with the tag anywhere (serde's derive).
    fn any_order<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// The map visitor behind every [`tag_first!`] enum's `Deserialize`.
pub struct Visitor<T>(PhantomData<T>);

impl<T> Default for Visitor<T> {
    fn default() -> Self {
        Visitor(PhantomData)
    }
}

impl<'de, T: TagFirstEnum<'de>> de::Visitor<'de> for Visitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key_seed(KeySeed(T::TAG))? {
            None => Err(de::Error::missing_field(T::TAG)),
            Some(Key::Tag) => {
                let variant = map.next_value_seed(TagValue)?;
                T::tag_first(Variant { variant, map })
            }
            Some(Key::Other(first)) => T::any_order(MapAccessDeserializer::new(Replay {
                first: Some(first),
                map,
            })),
        }
    }

    /// serde's derive also accepts `[tag, fields...]`; so do we.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::any_order(SeqAccessDeserializer::new(seq))
    }
}

/// The first key of a map: the tag, or some other (string) key.
enum Key<'de> {
    Tag,
    Other(Cow<'de, str>),
}

struct KeySeed(&'static str);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(if v == self.0 {
            Key::Tag
        } else {
            Key::Other(Cow::Borrowed(v))
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(if v == self.0 {
            Key::Tag
        } else {
            Key::Other(Cow::Owned(v.to_owned()))
        })
    }
}

/// The tag's value: a variant name, borrowed from the input when it can be.
struct TagValue;

impl<'de> DeserializeSeed<'de> for TagValue {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for TagValue {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a message type name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A map whose first key was already read (and was not the tag): hands that
/// key out again, then everything else from the map itself.
struct Replay<'de, A> {
    first: Option<Cow<'de, str>>,
    map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Replay<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(key) => seed
                .deserialize(CowStrDeserializer::<A::Error>::new(key))
                .map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map
            .size_hint()
            .map(|n| n + usize::from(self.first.is_some()))
    }
}

/// The rest of a map after its tag, presented as an externally tagged enum:
/// the variant is the tag's value and its fields are the remaining entries.
pub struct Variant<'de, A> {
    variant: Cow<'de, str>,
    map: A,
}

impl<'de, A: MapAccess<'de>> de::Deserializer<'de> for Variant<'de, A> {
    type Error = A::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> de::EnumAccess<'de> for Variant<'de, A> {
    type Error = A::Error;
    type Variant = Fields<A>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Fields<A>), A::Error> {
        let value = seed.deserialize(self.variant.into_deserializer())?;
        Ok((value, Fields(self.map)))
    }
}

/// The remaining entries of the map: a variant's fields.
pub struct Fields<A>(A);

impl<'de, A: MapAccess<'de>> de::VariantAccess<'de> for Fields<A> {
    type Error = A::Error;

    /// `{"t": "ping"}`; other keys are ignored, as serde's derive does.
    fn unit_variant(mut self) -> Result<(), A::Error> {
        while self.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    /// A variant holding a struct (`welcome`): its fields are the entries.
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        seed.deserialize(MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: de::Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::Map,
            &"a variant with named fields",
        ))
    }

    fn struct_variant<V: de::Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.0)
    }
}

/// Defines an internally tagged enum (`rename_all = "snake_case"`) whose
/// `Deserialize` reads the tag first when it is first. Write the enum as
/// usual, without serde attributes on the enum itself (field and variant
/// attributes are fine), and name the tag key and the enum's path as a
/// string (`remote`, for serde's remote derive):
///
/// ```ignore
/// tag_first! {
///     tag = "k", remote = "Shape", expecting = "a shape";
///     #[derive(Debug, Clone, PartialEq)]
///     pub enum Shape { Stroke { points: Vec<Point> }, ... }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! tag_first {
    (
        tag = $tag:literal, remote = $remote:literal, expecting = $expecting:literal;
        $(#[$meta:meta])*
        pub enum $name:ident { $($body:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize)]
        #[serde(tag = $tag, rename_all = "snake_case")]
        pub enum $name { $($body)* }

        const _: () = {
            #[derive(serde::Deserialize)]
            #[serde(remote = $remote, rename_all = "snake_case")]
            #[allow(dead_code)]
            enum TagFirst { $($body)* }

            #[derive(serde::Deserialize)]
            #[serde(remote = $remote, tag = $tag, rename_all = "snake_case")]
            #[allow(dead_code)]
            enum AnyOrder { $($body)* }

            impl<'de> $crate::tagfirst::TagFirstEnum<'de> for $name {
                const TAG: &'static str = $tag;
                const EXPECTING: &'static str = $expecting;
                fn tag_first<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    TagFirst::deserialize(d)
                }
                fn any_order<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    AnyOrder::deserialize(d)
                }
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    d.deserialize_map($crate::tagfirst::Visitor::<$name>::default())
                }
            }
        };
    };
}

#[cfg(test)]
mod tests {
    use crate::{Annotation, ClientFrame, ClientMsg, Point, RoomOp, Shape, Style};
    use serde::Serialize;

    fn op_frame() -> ClientFrame {
        ClientFrame {
            id: 7,
            m: ClientMsg::Op {
                room: "r1".into(),
                op_id: "o1".into(),
                op: RoomOp::Add {
                    ann: Annotation {
                        id: "a1".into(),
                        author: String::new(),
                        t_ms: 1500,
                        dur_ms: Some(2000),
                        style: Style::default(),
                        shape: Shape::Stroke {
                            points: vec![Point(0.1, 0.2), Point(0.3, 0.4)],
                        },
                    },
                },
            },
        }
    }

    /// A MessagePack value that keeps the order of map keys (tests only).
    #[derive(Debug, Clone, PartialEq)]
    enum V {
        Nil,
        Bool(bool),
        I(i64),
        U(u64),
        F32(f32),
        F64(f64),
        S(String),
        A(Vec<V>),
        M(Vec<(String, V)>),
    }

    impl From<&str> for V {
        fn from(s: &str) -> V {
            V::S(s.into())
        }
    }

    impl From<u64> for V {
        fn from(n: u64) -> V {
            V::U(n)
        }
    }

    impl Serialize for V {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{SerializeMap, SerializeSeq};
            match self {
                V::Nil => s.serialize_unit(),
                V::Bool(b) => s.serialize_bool(*b),
                V::I(n) => s.serialize_i64(*n),
                V::U(n) => s.serialize_u64(*n),
                V::F32(f) => s.serialize_f32(*f),
                V::F64(f) => s.serialize_f64(*f),
                V::S(v) => s.serialize_str(v),
                V::A(items) => {
                    let mut seq = s.serialize_seq(Some(items.len()))?;
                    for v in items {
                        seq.serialize_element(v)?;
                    }
                    seq.end()
                }
                V::M(entries) => {
                    let mut map = s.serialize_map(Some(entries.len()))?;
                    for (k, v) in entries {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                }
            }
        }
    }

    impl<'de> serde::Deserialize<'de> for V {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<V, D::Error> {
            struct Vis;
            impl<'de> serde::de::Visitor<'de> for Vis {
                type Value = V;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("any value")
                }
                fn visit_unit<E>(self) -> Result<V, E> {
                    Ok(V::Nil)
                }
                fn visit_none<E>(self) -> Result<V, E> {
                    Ok(V::Nil)
                }
                fn visit_bool<E>(self, b: bool) -> Result<V, E> {
                    Ok(V::Bool(b))
                }
                fn visit_i64<E>(self, n: i64) -> Result<V, E> {
                    Ok(V::I(n))
                }
                fn visit_u64<E>(self, n: u64) -> Result<V, E> {
                    Ok(V::U(n))
                }
                fn visit_f32<E>(self, f: f32) -> Result<V, E> {
                    Ok(V::F32(f))
                }
                fn visit_f64<E>(self, f: f64) -> Result<V, E> {
                    Ok(V::F64(f))
                }
                fn visit_str<E>(self, s: &str) -> Result<V, E> {
                    Ok(V::S(s.into()))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<V, A::Error> {
                    let mut items = Vec::new();
                    while let Some(v) = a.next_element()? {
                        items.push(v);
                    }
                    Ok(V::A(items))
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<V, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(e) = a.next_entry()? {
                        entries.push(e);
                    }
                    Ok(V::M(entries))
                }
            }
            d.deserialize_any(Vis)
        }
    }

    fn map(entries: Vec<(&str, V)>) -> V {
        V::M(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn to_value<T: Serialize>(t: &T) -> V {
        let bytes = rmp_serde::to_vec_named(t).expect("encode");
        rmp_serde::from_slice(&bytes).expect("value")
    }

    fn bytes(v: &V) -> Vec<u8> {
        rmp_serde::to_vec(v).expect("write")
    }

    /// Moves the key `tag` of every map to the end, recursively.
    fn tag_last(v: V, tag: &str) -> V {
        match v {
            V::M(entries) => {
                let (mut tags, mut rest): (Vec<_>, Vec<_>) = entries
                    .into_iter()
                    .map(|(k, v)| (k, tag_last(v, tag)))
                    .partition(|(k, _)| k == tag);
                rest.append(&mut tags);
                V::M(rest)
            }
            V::A(items) => V::A(items.into_iter().map(|v| tag_last(v, tag)).collect()),
            other => other,
        }
    }

    #[test]
    fn tag_first_and_tag_last_decode_the_same() {
        let frame = op_frame();
        let first = rmp_serde::to_vec_named(&frame).expect("encode");
        assert_eq!(crate::decode_client(&first).expect("tag first"), frame);
        let last = bytes(&tag_last(tag_last(to_value(&frame), "t"), "k"));
        assert_ne!(first, last, "the keys really moved");
        assert_eq!(crate::decode_client(&last).expect("tag last"), frame);
    }

    #[test]
    fn unit_variants_ignore_other_keys_in_either_order() {
        for m in [
            map(vec![("t", "ping".into()), ("x", V::U(1))]),
            map(vec![("x", V::U(1)), ("t", "ping".into())]),
        ] {
            let frame = map(vec![("id", V::U(3)), ("m", m)]);
            let got = crate::decode_client(&bytes(&frame)).expect("ping");
            assert_eq!(got.m, ClientMsg::Ping);
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases = [
            (map(vec![("t", "nope".into())]), "unknown variant `nope`"),
            (map(vec![("x", V::U(1))]), "missing field `t`"),
            (map(vec![]), "missing field `t`"),
            (map(vec![("t", V::I(5))]), "invalid type"),
            (map(vec![("t", "join_room".into())]), "missing field `room`"),
            (
                map(vec![
                    ("room", "r".into()),
                    ("t", "join_room".into()),
                    ("since", "x".into()),
                ]),
                "invalid type",
            ),
        ];
        for (m, want) in cases {
            let err = rmp_serde::from_slice::<ClientMsg>(&bytes(&m)).expect_err("must fail");
            assert!(err.to_string().contains(want), "{err} should say {want}");
        }
    }

    #[test]
    fn array_form_still_decodes() {
        // serde's derive accepts `[tag, fields...]`; keep accepting it.
        let v = V::A(vec!["leave_room".into(), "r9".into()]);
        let got = rmp_serde::from_slice::<ClientMsg>(&bytes(&v)).expect("array");
        assert_eq!(got, ClientMsg::LeaveRoom { room: "r9".into() });
    }

    #[test]
    fn every_vector_decodes_after_moving_tags_last() {
        for (name, frame) in crate::vectors::client_vectors() {
            let moved = bytes(&tag_last(tag_last(to_value(&frame), "t"), "k"));
            assert_eq!(crate::decode_client(&moved).expect(name), frame, "{name}");
        }
        for (name, frame) in crate::vectors::server_vectors() {
            let moved = bytes(&tag_last(tag_last(to_value(&frame), "t"), "k"));
            assert_eq!(crate::decode_server(&moved).expect(name), frame, "{name}");
        }
    }
}
