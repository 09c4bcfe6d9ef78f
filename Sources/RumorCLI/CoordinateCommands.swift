import ArgumentParser

/// `rumor rtt NODE [NODE]`: the round trip between two nodes estimated from their Vivaldi
/// coordinates, as `serf rtt` prints it (the second node defaults to this agent's).
public struct RTTCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rtt", abstract: "Estimate the round trip between two nodes from their network coordinates (as serf rtt).",
        discussion: """
            The estimate comes from Vivaldi coordinates (Serf's), learned from probe round trips: a node's \
            coordinate is known here once it has answered one of this agent's probes. Errors: unknown_node, \
            no_coordinate (not probed yet, or a plain memberlist node).
            """)
    @OptionGroup var options: ClientOptions
    @Argument(help: "The first node.") var node: String
    @Argument(help: "The second node (default: this agent's).") var other: String?
    public init() {}

    public func run() throws {
        try options.show("GET", "/v1/rtt" + APIClient.query([("node", node), ("other", other)]))
    }
}

/// `rumor coordinate [NODE]`: a node's network coordinate as this agent knows it.
public struct CoordinateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "coordinate", abstract: "Show a node's Vivaldi network coordinate (default: this agent's).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "The node (default: this agent's).") var node: String?
    public init() {}

    public func run() throws {
        try options.show("GET", "/v1/coordinate" + APIClient.query([("node", node)]))
    }
}
