/// The check every address a peer names passes before the machine sends to it or lists it
/// (`AddressRule`): the one place membership refuses an address.
extension Membership {
    /// Whether `address`, named by `field` of a message from `sender`, may be used; when not,
    /// reports an `addressRefused` directive into `out` (the caller then drops the message or
    /// record, changing nothing).
    func admits(_ address: NodeAddress, _ field: String, from sender: NodeAddress, into out: inout [MembershipDirective]) -> Bool {
        guard let problem = addressRule.problem(with: address) else { return true }
        out.append(.addressRefused(AddressRefusal(address: address, problem: problem, field: field, sender: sender)))
        return false
    }
}
