/// The `--regions` / `--region-latency-ms` syntax: base one-way latencies within and between
/// regions named A, B, C…
extension SimulationConfiguration {
    /// The three-region model `--regions 3` stands for: 5 ms within a region, A–B 40 ms,
    /// B–C 80 ms, A–C 150 ms (say Frankfurt, Virginia, Singapore), one way.
    public static let threeRegions = "5,A-B=40,A-C=150,B-C=80"

    /// Parses a region latency spec into a matrix, µs.
    ///
    /// Comma-separated terms, milliseconds (decimals allowed): a bare number is the latency
    /// within every region; `A=3` within region A only; `A-B=40` between A and B, both ways.
    /// Every region needs its within latency and every pair its latency.
    /// - Parameter regions: how many regions; nil: as many as the spec names.
    /// - Throws: `SimulationError` naming the term that is wrong or the pair that is missing.
    public static func regionLatency(parsing spec: String, regions: Int?) throws(SimulationError) -> [[Int]] {
        var within: Int?
        var own: [Int: Int] = [:]
        var pairs: [Int: [Int: Int]] = [:]
        var named = 0
        func region(_ text: Substring) throws(SimulationError) -> Int {
            guard text.count == 1, let scalar = text.unicodeScalars.first, scalar.value >= 65, scalar.value < 65 + 26 else {
                throw SimulationError(message: "'\(text)' is not a region (regions are A, B, C… up to Z)")
            }
            let index = Int(scalar.value) - 65
            named = max(named, index + 1)
            return index
        }
        func microseconds(_ text: Substring, in term: Substring) throws(SimulationError) -> Int {
            guard let value = Double(text.trimmingSpaces), value >= 0, value <= 3_600_000 else {
                throw SimulationError(message: "'\(term)' needs a latency in ms, e.g. 40 or 0.5")
            }
            return Int((value * 1000).rounded())
        }
        for term in spec.split(separator: ",") {
            let parts = term.split(separator: "=", maxSplits: 1)
            if parts.count == 1 {
                within = try microseconds(parts[0], in: term)
                continue
            }
            let names = parts[0].trimmingSpaces.split(separator: "-")
            let value = try microseconds(parts[1], in: term)
            switch names.count {
            case 1: own[try region(names[0])] = value
            case 2:
                let (a, b) = (try region(names[0]), try region(names[1]))
                pairs[a, default: [:]][b] = value
                pairs[b, default: [:]][a] = value
            default: throw SimulationError(message: "'\(term)' should be A=ms or A-B=ms")
            }
        }
        let count = regions ?? max(named, 1)
        guard count >= 1, count <= 26 else { throw SimulationError(message: "regions must be 1...26") }
        guard named <= count else {
            throw SimulationError(message: "the region latency names region \(Character(UnicodeScalar(UInt8(64 + named)))) but there are \(count) regions")
        }
        var matrix = Array(repeating: Array(repeating: 0, count: count), count: count)
        for r in 0..<count {
            guard let value = own[r] ?? within else {
                throw SimulationError(message: "no latency within region \(Self.regionName(r)): add a bare number (every region) or \(Self.regionName(r))=ms")
            }
            matrix[r][r] = value
            for s in 0..<count where s != r {
                guard let value = pairs[r]?[s] else {
                    throw SimulationError(message: "no latency between regions \(Self.regionName(min(r, s))) and \(Self.regionName(max(r, s))): add \(Self.regionName(min(r, s)))-\(Self.regionName(max(r, s)))=ms")
                }
                matrix[r][s] = value
            }
        }
        return matrix
    }

    static func regionName(_ index: Int) -> String { String(Character(UnicodeScalar(UInt8(65 + index)))) }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
