//! Request-scoped values: the nodes behind [`Context::with_value`](crate::Context::with_value).
//!
//! Values are keyed by their type, so two crates can never collide: a private
//! type is Go's "unexported key type", enforced by the compiler. A value node
//! stores its value inline (one allocation per `with_value`) and lookup walks
//! up the chain, so the nearest ancestor wins.

use std::any::{Any, TypeId};

use crate::context::Context;
use crate::tree::drop_chain;

pub(crate) struct ValueNode<V: ?Sized> {
    pub(crate) parent: Context,
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) value: V,
}

/// A value node with its type erased; what a `Context` holds.
pub(crate) type ErasedValue = ValueNode<dyn Any + Send + Sync>;

impl<V: ?Sized> ValueNode<V> {
    pub(crate) fn take_parent(&mut self) -> Context {
        std::mem::take(&mut self.parent)
    }
}

pub(crate) fn new<T: Send + Sync + 'static>(
    parent: &Context,
    value: T,
) -> std::sync::Arc<ErasedValue> {
    std::sync::Arc::new(ValueNode {
        parent: parent.clone(),
        type_id: TypeId::of::<T>(),
        type_name: std::any::type_name::<T>(),
        value,
    })
}

impl ErasedValue {
    /// The value, if this node holds a `T`.
    #[inline]
    pub(crate) fn get<T: 'static>(&self) -> Option<&T> {
        if self.type_id == TypeId::of::<T>() {
            (&self.value as &dyn Any).downcast_ref::<T>()
        } else {
            None
        }
    }
}

impl<V: ?Sized> Drop for ValueNode<V> {
    fn drop(&mut self) {
        drop_chain(self.take_parent());
    }
}
