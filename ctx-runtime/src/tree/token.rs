//! The node's half of the bridge to tokio-util's `CancellationToken`, both
//! ways (`crate::bridge` is the public half).

use std::future::Future;
use std::sync::{Arc, Weak};
use std::task::Waker;

use tokio_util::sync::CancellationToken;

use super::cancel::drop_quietly;
use super::{CANCELED, CancelNode, Extra, Inner, Live};
use crate::error::Cause;
use crate::sync::lock;

impl CancelNode {
    /// A token cancelled when this node is done: a child of one token the
    /// node keeps (so a user cancelling theirs cancels nothing else).
    pub(crate) fn cancellation_token(self: &Arc<Self>) -> CancellationToken {
        let mut inner = lock(&self.inner);
        let Some(live) = self.live_mut(&mut inner) else {
            drop(inner);
            let token = CancellationToken::new();
            token.cancel();
            return token;
        };
        let token = live
            .token
            .get_or_insert_with(CancellationToken::new)
            .clone();
        drop(inner);
        token.child_token()
    }

    /// Cancels this node when `token` is cancelled, without a task: the
    /// token's wait is polled once, here, with a waker that cancels the node,
    /// and kept in the node until the node is done (then dropped, which
    /// deregisters it from the token).
    pub(crate) fn watch_token(self: &Arc<Self>, token: CancellationToken) {
        let waker = Waker::from(Arc::new(TokenWaker(Arc::downgrade(self))));
        let mut wait = Box::pin(token.cancelled_owned());
        let polled = wait
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        if polled.is_ready() {
            self.token_cancelled();
            return;
        }
        let mut inner = lock(&self.inner);
        let unused = match self.live_mut(&mut inner) {
            Some(live) => live.watch.replace(wait),
            None => Some(wait),
        };
        drop(inner);
        drop(unused);
    }

    fn token_cancelled(&self) {
        let cause = Cause::new(crate::bridge::TokenCancelled);
        // On the thread that cancelled the token, inside tokio-util: a user
        // panic met here is not that thread's to receive.
        if let Some(panic) = self.cancel_with(CANCELED, Some(cause)) {
            panic.discard();
        }
    }

    /// Under the lock: the node's live extras, made if missing; `None` if
    /// the node is done. (Live extras are never shared, so the `Arc` is ours.)
    /// Joins the parent first: a token must be reached by its cancels.
    fn live_mut<'a>(self: &Arc<Self>, inner: &'a mut Inner) -> Option<&'a mut Live> {
        if !self.join() || !self.list() {
            return None;
        }
        let extra = inner
            .extra
            .get_or_insert_with(|| Arc::new(Extra::Live(Live::default())));
        match Arc::get_mut(extra) {
            Some(Extra::Live(live)) => Some(live),
            _ => None,
        }
    }
}

/// Wakes when a watched token is cancelled: cancels the node, if it is still there.
struct TokenWaker(Weak<CancelNode>);

impl std::task::Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(node) = self.0.upgrade() {
            node.token_cancelled();
            // Ours may be the last reference: its drop may run values' `Drop`s.
            drop_quietly(node);
        }
    }
}
