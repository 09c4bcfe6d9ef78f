import ArgumentParser

/// The commands that talk to a running agent, in help order; both executables list them.
public let clientCommands: [any ParsableCommand.Type] = [
    MembersCommand.self, JoinCommand.self, LeaveCommand.self, InfoCommand.self, PutCommand.self, GetCommand.self,
    DeleteCommand.self, ListCommand.self, WatchCommand.self, WaitCommand.self, StatusCommand.self, KeygenCommand.self, KeysCommand.self,
    TagsCommand.self, EventCommand.self, EventsCommand.self, QueryCommand.self, MonitorCommand.self, RTTCommand.self,
    CoordinateCommand.self,
]

/// The summary line both executables show for `rumor`.
public let rumorAbstract = "Gossip membership and a replicated key-value store for swarms of agents, services and machines."

/// The commands that live in the `rumor-agent` executable (they need the protocol, the storage
/// and the HTTP server), which the lean `rumor` runs for them: one command for users, and a
/// client path that loads none of it.
public enum ServerCommands {
    /// Name and one-line summary of each.
    public static let summaries: [(name: String, abstract: String)] = [
        ("agent", agentAbstract),
        ("sim", simAbstract),
        ("context", contextAbstract),
    ]

    public static let agentAbstract = "Run a Rumor node: gossip membership, replicated state and the local HTTP API."
    public static let simAbstract = "Simulate a swarm on the real protocol code, with a virtual clock and network."
    public static let mcpAbstract = "Serve the local agent to AI agents as a Model Context Protocol server over stdio."
    public static let mcpDiscussion = """
        Add it to an MCP client as a stdio server, e.g. {"command": "rumor", "args": ["mcp", \
        "--api", "127.0.0.1:7373"]}. Tools: members, rtt, get, put, delete, list, status; every key is a \
        resource rumor://kv/{key} you can subscribe to. Tool errors carry the agent's code, message \
        and hint.
        """
    public static let contextAbstract = "Describe every command, flag and error code (JSON with --json), for agents that discover tools."

    /// The executable that serves them, beside the running `rumor`.
    public static let executableName = "rumor-agent"
    /// The MCP server's executable (apart from the agent, whose memory it would grow by the MCP
    /// SDK's FoundationNetworking and curl).
    public static let mcpExecutableName = "rumor-mcp"
}
