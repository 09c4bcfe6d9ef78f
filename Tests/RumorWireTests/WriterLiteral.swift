import RumorCore

/// In tests a writer may be written as its node's name: generation 0 of that node.
extension Writer: ExpressibleByStringLiteral {
    public init(stringLiteral name: String) {
        self.init(name: name, generation: 0)
    }
}
