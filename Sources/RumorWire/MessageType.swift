/// memberlist's message type bytes (`net.go`), plus the label header byte of memberlist ≥ 0.3.
enum MessageType: UInt8 {
    case ping = 0
    case indirectPing = 1
    case ack = 2
    case suspect = 3
    case alive = 4
    case dead = 5
    case pushPull = 6
    case compound = 7
    case user = 8
    case compress = 9
    case encrypt = 10
    case nack = 11
    case hasCRC = 12
    case error = 13
    /// `[244, length, label…]` prefixes packets and streams of a labelled (swarm-named) cluster.
    case hasLabel = 244
}
