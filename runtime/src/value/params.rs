//! Parameters: single values ([`ToParam`]) and the lists statements take ([`Params`]).

use super::{Value, ValueRef};

/// A Rust value that can be bound as a statement parameter, on every backend.
///
/// Implemented for the integer types (a `u64` or `usize` above `i64::MAX` is an error, not
/// a wrapped number), `f32`/`f64`, `bool` (bound as 0/1; a PostgreSQL `boolean` column takes
/// it too), `str`/`String`, `[u8]`/`Vec<u8>`, [`Value`], `Option` of any of
/// them (`None` is `NULL`) and references to any of them; with the crate's features, for
/// the date, time, UUID and JSON types of `chrono`, `time`, `uuid` and `serde_json`.
/// Implement it for your own types by returning the value they are stored as: borrowed
/// from `self` when `self` holds it (`ValueRef::Text(&self.name).into()`), owned when it
/// is made for the occasion (`Value::Text(self.to_string()).into()`).
pub trait ToParam: Sync {
    /// The value to bind.
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>>;
}

/// What a [`ToParam`] binds: a value borrowed from the Rust value, or one made for the
/// occasion.
///
/// Owned values exist because not every type holds its stored form: a date's or a UUID's
/// text is written when the parameter is bound, and a [`ValueRef`] could not borrow it.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue<'a> {
    /// A value borrowed from the parameter (integers, text and bytes the caller holds).
    Borrowed(ValueRef<'a>),
    /// A value made when the parameter was bound (a formatted date, a UUID's text).
    Owned(Value),
}

impl ParamValue<'_> {
    /// The value, borrowed: what a backend binds.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            ParamValue::Borrowed(value) => *value,
            ParamValue::Owned(value) => value.as_ref(),
        }
    }

    /// The value, owned.
    pub fn into_owned(self) -> Value {
        match self {
            ParamValue::Borrowed(value) => value.to_owned(),
            ParamValue::Owned(value) => value,
        }
    }
}

impl<'a> From<ValueRef<'a>> for ParamValue<'a> {
    #[inline]
    fn from(value: ValueRef<'a>) -> Self {
        ParamValue::Borrowed(value)
    }
}

impl From<Value> for ParamValue<'_> {
    #[inline]
    fn from(value: Value) -> Self {
        ParamValue::Owned(value)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        (**self).to_param()
    }
}

impl<T: ToParam + ?Sized> ToParam for Box<T> {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Some(value) => value.to_param(),
            None => Ok(ValueRef::Null.into()),
        }
    }
}

macro_rules! lossless_integers {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            #[inline]
            fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
                Ok(ValueRef::Integer(i64::from(*self)).into())
            }
        }
    )*};
}
lossless_integers!(i8, i16, i32, i64, u8, u16, u32, bool);

macro_rules! checked_integers {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            #[inline]
            fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
                i64::try_from(*self)
                    .map(|i| ValueRef::Integer(i).into())
                    .map_err(|_| {
                    format!(
                        "{} {} does not fit in a 64-bit signed integer",
                        stringify!($t),
                        self
                    )
                    .into()
                })
            }
        }
    )*};
}
checked_integers!(u64, usize, isize, i128, u128);

impl ToParam for f64 {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Real(*self).into())
    }
}

impl ToParam for f32 {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Real(f64::from(*self)).into())
    }
}

impl ToParam for str {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Text(self).into())
    }
}

impl ToParam for String {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Text(self).into())
    }
}

impl ToParam for std::borrow::Cow<'_, str> {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Text(self).into())
    }
}

impl ToParam for [u8] {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Blob(self).into())
    }
}

impl ToParam for Vec<u8> {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Blob(self).into())
    }
}

impl<const N: usize> ToParam for [u8; N] {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ValueRef::Blob(self).into())
    }
}

impl ToParam for Value {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.as_ref().into())
    }
}

impl ToParam for ValueRef<'_> {
    #[inline]
    fn to_param(&self) -> Result<ParamValue<'_>, Box<dyn std::error::Error + Send + Sync>> {
        Ok((*self).into())
    }
}

/// The parameters of one statement, bound to `?1`, `?2`, … in order: `()`, a tuple of
/// [`ToParam`]s (of up to 16), an array, slice or `Vec` of one `ToParam` type, or
/// [`params!`](crate::params) for a list of mixed types.
///
/// Every parameter is checked when it is bound: a value that is no valid parameter (a
/// `u64` above `i64::MAX`) fails the statement before it runs, naming the parameter.
pub trait Params {
    /// The number of parameters.
    fn param_count(&self) -> usize;

    /// Parameter `index` (0-based), for `index < param_count()`.
    fn param(&self, index: usize) -> &dyn ToParam;

    /// Hands every parameter, in order, to `visitor`. Tuples override it to call the visitor
    /// with each element's own type, so that binding inlines (the SQLite hot path); the
    /// default goes through [`param`](Params::param).
    #[doc(hidden)]
    #[inline]
    fn visit_params<V: ParamVisitor>(&self, visitor: &mut V) -> crate::Result<()> {
        for index in 0..self.param_count() {
            visitor.visit(index, self.param(index))?;
        }
        Ok(())
    }
}

/// Receives the parameters of a [`Params`] one by one (see [`Params::visit_params`]).
#[doc(hidden)]
pub trait ParamVisitor {
    /// Parameter `index` (0-based).
    fn visit<T: ToParam + ?Sized>(&mut self, index: usize, param: &T) -> crate::Result<()>;
}

impl Params for () {
    #[inline]
    fn param_count(&self) -> usize {
        0
    }
    fn param(&self, index: usize) -> &dyn ToParam {
        panic!("no parameter {index} in ()")
    }
}

impl<T: ToParam> Params for [T] {
    #[inline]
    fn param_count(&self) -> usize {
        <[T]>::len(self)
    }
    #[inline]
    fn param(&self, index: usize) -> &dyn ToParam {
        &self[index]
    }
}

impl<T: ToParam, const N: usize> Params for [T; N] {
    #[inline]
    fn param_count(&self) -> usize {
        N
    }
    #[inline]
    fn param(&self, index: usize) -> &dyn ToParam {
        &self[index]
    }
}

impl<T: ToParam> Params for Vec<T> {
    #[inline]
    fn param_count(&self) -> usize {
        <[T]>::len(self)
    }
    #[inline]
    fn param(&self, index: usize) -> &dyn ToParam {
        &self[index]
    }
}

impl<P: Params + ?Sized> Params for &P {
    #[inline]
    fn param_count(&self) -> usize {
        (**self).param_count()
    }
    #[inline]
    fn param(&self, index: usize) -> &dyn ToParam {
        (**self).param(index)
    }
    #[inline]
    fn visit_params<V: ParamVisitor>(&self, visitor: &mut V) -> crate::Result<()> {
        (**self).visit_params(visitor)
    }
}

macro_rules! tuple_params {
    ($len:expr; $($name:ident $idx:tt),+) => {
        impl<$($name: ToParam),+> Params for ($($name,)+) {
            #[inline]
            fn param_count(&self) -> usize {
                $len
            }
            #[inline]
            fn param(&self, index: usize) -> &dyn ToParam {
                match index {
                    $($idx => &self.$idx,)+
                    _ => panic!("no parameter {index} in a tuple of {}", $len),
                }
            }
            #[inline]
            fn visit_params<V: ParamVisitor>(&self, visitor: &mut V) -> crate::Result<()> {
                $(visitor.visit($idx, &self.$idx)?;)+
                Ok(())
            }
        }
    };
}
tuple_params!(1; A 0);
tuple_params!(2; A 0, B 1);
tuple_params!(3; A 0, B 1, C 2);
tuple_params!(4; A 0, B 1, C 2, D 3);
tuple_params!(5; A 0, B 1, C 2, D 3, E 4);
tuple_params!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_params!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_params!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_params!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_params!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_params!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_params!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
tuple_params!(13; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
tuple_params!(14; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
tuple_params!(15; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
tuple_params!(16; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);
