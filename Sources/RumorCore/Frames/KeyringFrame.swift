/// A keyring operation, run on every node of the swarm by `rumor keys`.
public enum KeyringOperation: Sendable, Hashable {
    case list
    case install([UInt8])
    case use([UInt8])
    case remove([UInt8])

    /// `list`, `install`, `use` or `remove`.
    public var name: String {
        switch self {
        case .list: "list"
        case .install: "install"
        case .use: "use"
        case .remove: "remove"
        }
    }
}

/// A keyring frame: a request to run an operation, or a node's answer with its keys after it.
/// Frames ride inside memberlist user messages on a stream, encrypted like all gossip; a node
/// refuses requests when it has no keyring (so an unencrypted swarm cannot be given keys by
/// whoever reaches its port).
public enum KeyringFrame: Sendable, Hashable {
    case request(KeyringOperation)
    /// The node's installed keys after the operation (primary first), and its error, if any.
    case response(keys: [[UInt8]], error: String?)
}
