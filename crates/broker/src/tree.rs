//! A trie of topic filters, so a PUBLISH finds its subscribers without
//! scanning every subscription. Matching follows [`crate::topic::matches`].

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
struct Node<K> {
    children: HashMap<String, Node<K>>,
    /// Subscribers whose filter ends at this node, with their granted QoS.
    subscribers: HashMap<K, u8>,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            subscribers: HashMap::new(),
        }
    }
}

impl<K> Node<K> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subscribers.is_empty()
    }
}

/// Topic filters with their subscribers (`K`) and granted QoS.
#[derive(Debug)]
pub struct SubscriptionTree<K> {
    root: Node<K>,
    len: usize,
}

impl<K> Default for SubscriptionTree<K> {
    fn default() -> Self {
        SubscriptionTree {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone> SubscriptionTree<K> {
    /// Number of (filter, subscriber) pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no subscription exists.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces `key`'s subscription to `filter`.
    pub fn insert(&mut self, filter: &str, key: K, qos: u8) {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.to_owned()).or_default();
        }
        if node.subscribers.insert(key, qos).is_none() {
            self.len += 1;
        }
    }

    /// Removes `key`'s subscription to `filter`; returns whether it existed.
    pub fn remove(&mut self, filter: &str, key: &K) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove_at(&mut self.root, &levels, key);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Every subscriber whose filter matches `topic`, once each, with the
    /// highest QoS among its matching filters.
    pub fn matches(&self, topic: &str) -> HashMap<K, u8> {
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        let mut out = HashMap::new();
        collect(&self.root, &levels, 0, dollar, &mut out);
        out
    }
}

fn remove_at<K: Hash + Eq>(node: &mut Node<K>, levels: &[&str], key: &K) -> bool {
    match levels.split_first() {
        None => node.subscribers.remove(key).is_some(),
        Some((first, rest)) => {
            let Some(child) = node.children.get_mut(*first) else {
                return false;
            };
            let removed = remove_at(child, rest, key);
            if child.is_empty() {
                node.children.remove(*first);
            }
            removed
        }
    }
}

fn add<K: Hash + Eq + Clone>(out: &mut HashMap<K, u8>, subs: &HashMap<K, u8>) {
    for (k, q) in subs {
        let e = out.entry(k.clone()).or_insert(*q);
        if *q > *e {
            *e = *q;
        }
    }
}

fn collect<K: Hash + Eq + Clone>(
    node: &Node<K>,
    levels: &[&str],
    idx: usize,
    dollar: bool,
    out: &mut HashMap<K, u8>,
) {
    if idx == levels.len() {
        add(out, &node.subscribers);
        return;
    }
    let wild_ok = !(idx == 0 && dollar);
    if wild_ok {
        // `#` matches one or more remaining levels (AWS: never zero).
        if let Some(hash) = node.children.get("#") {
            add(out, &hash.subscribers);
        }
        if let Some(plus) = node.children.get("+") {
            collect(plus, levels, idx + 1, dollar, out);
        }
    }
    let level = levels[idx];
    if level != "+" && level != "#" {
        if let Some(child) = node.children.get(level) {
            collect(child, levels, idx + 1, dollar, out);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::topic;

    #[test]
    fn tree_agrees_with_matches() {
        let filters = [
            "a/#",
            "#",
            "a/+",
            "a/b",
            "+/b",
            "$aws/things/+/shadow/#",
            "a/+/c",
            "+",
            "+/+",
            "a/b/#",
        ];
        let topics = [
            "a",
            "a/b",
            "a/b/c",
            "b/b",
            "$aws/things/r/shadow/get",
            "$aws/b",
            "x",
            "/x",
            "a/",
        ];
        let mut tree = SubscriptionTree::default();
        for (i, f) in filters.iter().enumerate() {
            tree.insert(f, i, 1);
        }
        assert_eq!(tree.len(), filters.len());
        for t in topics {
            let got = tree.matches(t);
            for (i, f) in filters.iter().enumerate() {
                assert_eq!(got.contains_key(&i), topic::matches(f, t), "{f} vs {t}");
            }
        }
    }

    #[test]
    fn overlapping_filters_deliver_once_with_max_qos() {
        let mut tree = SubscriptionTree::default();
        tree.insert("a/#", "c1", 0);
        tree.insert("a/b", "c1", 1);
        let got = tree.matches("a/b");
        assert_eq!(got.len(), 1);
        assert_eq!(got["c1"], 1);
    }

    #[test]
    fn remove_prunes() {
        let mut tree = SubscriptionTree::default();
        tree.insert("a/b/c", 1, 0);
        assert!(tree.remove("a/b/c", &1));
        assert!(!tree.remove("a/b/c", &1));
        assert!(tree.is_empty());
        assert!(tree.root.children.is_empty());
        assert!(tree.matches("a/b/c").is_empty());
    }
}
