/// The part of multicast DNS (RFC 6762, DNS-SD RFC 6763) that swarm discovery needs, as Serf's
/// `-discover` speaks it (docs/serf-wire.md §10): a PTR question for `_serf_NAME._tcp.local.`,
/// and an answer with the instance's PTR, SRV, A/AAAA and TXT records. Names may be compressed
/// (RFC 1035 §4.1.4); decoding is bounded and never trusts a length or a pointer.
public enum MDNS {
    public static let port: UInt16 = 5353
    /// 224.0.0.251 and ff02::fb.
    public static let groupV4 = "224.0.0.251"
    public static let groupV6 = "ff02::fb"

    enum RecordType: UInt16 {
        case a = 1, ptr = 12, txt = 16, aaaa = 28, srv = 33, any = 255
    }

    /// The DNS-SD service of a swarm, as Serf names it: `_serf_NAME._tcp.local.`.
    public static func service(swarm: String) -> String {
        "_serf_\(swarm)._tcp.local."
    }

    /// A record of an answer.
    public enum Record: Sendable, Hashable {
        case pointer(name: String, target: String)
        case service(name: String, port: UInt16, target: String)
        case address(name: String, ip: [UInt8])
        case text(name: String, strings: [String])
    }

    /// A decoded message: its questions (name, type) and every record of its answer,
    /// authority and additional sections.
    public struct Message: Sendable, Hashable {
        public var isResponse: Bool
        public var questions: [(name: String, type: UInt16)]
        public var records: [Record]

        public static func == (lhs: Message, rhs: Message) -> Bool {
            lhs.isResponse == rhs.isResponse && lhs.records == rhs.records
                && lhs.questions.map(\.name) == rhs.questions.map(\.name) && lhs.questions.map(\.type) == rhs.questions.map(\.type)
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(isResponse)
            hasher.combine(records)
        }

        /// Whether it asks for `service`'s instances (a PTR or ANY question, names compared
        /// without case as DNS does).
        public func asks(for service: String) -> Bool {
            !isResponse && questions.contains { question in
                question.name.lowercased() == service.lowercased()
                    && (question.type == RecordType.ptr.rawValue || question.type == RecordType.any.rawValue)
            }
        }

        /// The `host:port` of every instance of `service` it answers with: a PTR to an
        /// instance, the instance's SRV, and an address of the SRV's target.
        public func instances(of service: String) -> [(ip: [UInt8], port: UInt16)] {
            var found: [(ip: [UInt8], port: UInt16)] = []
            let instances = records.compactMap { record -> String? in
                guard case .pointer(let name, let target) = record, name.lowercased() == service.lowercased() else { return nil }
                return target.lowercased()
            }
            for instance in Set(instances) {
                for case .service(let name, let port, let target) in records where name.lowercased() == instance {
                    for case .address(let host, let ip) in records where host.lowercased() == target.lowercased() {
                        found.append((ip, port))
                    }
                }
            }
            return found
        }
    }

    // MARK: - Encoding

    /// A question for the instances of `service` (one PTR question, multicast response wanted).
    public static func query(for service: String, id: UInt16) -> [UInt8] {
        var bytes = header(id: id, flags: 0, questions: 1, answers: 0)
        writeName(service, to: &bytes)
        writeUInt16(RecordType.ptr.rawValue, to: &bytes)
        writeUInt16(1, to: &bytes)  // class IN
        return bytes
    }

    /// The answer of an instance: PTR service → instance, SRV instance → host:port, the host's
    /// addresses (A for 4 bytes, AAAA for 16), TXT `text`; TTL 120 s as Serf's.
    public static func answer(
        service: String, instance: String, host: String, port: UInt16, addresses: [[UInt8]], text: String, ttl: UInt32 = 120
    ) -> [UInt8] {
        let instanceName = instance + "." + service
        var records: [(String, RecordType, [UInt8])] = []
        var target: [UInt8] = []
        writeName(instanceName, to: &target)
        records.append((service, .ptr, target))
        var srv: [UInt8] = []
        writeUInt16(10, to: &srv)  // priority
        writeUInt16(1, to: &srv)  // weight
        writeUInt16(port, to: &srv)
        writeName(host, to: &srv)
        records.append((instanceName, .srv, srv))
        for ip in addresses where ip.count == 4 || ip.count == 16 {
            records.append((host, ip.count == 4 ? .a : .aaaa, ip))
        }
        let utf8 = Array(text.utf8.prefix(255))
        records.append((instanceName, .txt, [UInt8(utf8.count)] + utf8))
        var bytes = header(id: 0, flags: 0x8400, questions: 0, answers: UInt16(records.count))
        for (name, type, data) in records {
            writeName(name, to: &bytes)
            writeUInt16(type.rawValue, to: &bytes)
            writeUInt16(1, to: &bytes)
            writeUInt16(UInt16(ttl >> 16), to: &bytes)
            writeUInt16(UInt16(ttl & 0xffff), to: &bytes)
            writeUInt16(UInt16(data.count), to: &bytes)
            bytes += data
        }
        return bytes
    }

    private static func header(id: UInt16, flags: UInt16, questions: UInt16, answers: UInt16) -> [UInt8] {
        var bytes: [UInt8] = []
        for field in [id, flags, questions, answers, 0, 0] { writeUInt16(field, to: &bytes) }
        return bytes
    }

    private static func writeUInt16(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
    }

    /// A name as labels (no compression), ending with the root.
    private static func writeName(_ name: String, to bytes: inout [UInt8]) {
        for label in name.split(separator: ".") {
            let utf8 = Array(label.utf8.prefix(63))
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes.append(0)
    }

    // MARK: - Decoding

    /// Decodes a message; records of other types are skipped.
    /// - Throws: `WireError` for a truncated message, a bad name or a pointer loop.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Message {
        var reader = Reader(bytes: bytes)
        _ = try reader.uint16()
        let flags = try reader.uint16()
        let questionCount = Int(try reader.uint16())
        let recordCount = Int(try reader.uint16()) + Int(try reader.uint16()) + Int(try reader.uint16())
        // Each question takes at least 5 bytes and each record 11: refuse counts the message cannot hold.
        guard questionCount * 5 + recordCount * 11 <= bytes.count else { throw WireError(.truncated, "DNS counts past the message") }
        var message = Message(isResponse: flags & 0x8000 != 0, questions: [], records: [])
        for _ in 0..<questionCount {
            let name = try reader.name()
            let type = try reader.uint16()
            _ = try reader.uint16()
            message.questions.append((name, type))
        }
        for _ in 0..<recordCount {
            let name = try reader.name()
            let type = try reader.uint16()
            _ = try reader.uint16()
            _ = try reader.uint16()
            _ = try reader.uint16()
            let length = Int(try reader.uint16())
            guard reader.offset + length <= bytes.count else { throw WireError(.truncated, "a DNS record past the message") }
            let end = reader.offset + length
            switch RecordType(rawValue: type) {
            case .ptr:
                message.records.append(.pointer(name: name, target: try reader.name()))
            case .srv:
                _ = try reader.uint16()
                _ = try reader.uint16()
                let port = try reader.uint16()
                message.records.append(.service(name: name, port: port, target: try reader.name()))
            case .a, .aaaa:
                guard length == (type == RecordType.a.rawValue ? 4 : 16) else { throw WireError(.malformed, "an address of \(length) bytes") }
                message.records.append(.address(name: name, ip: Array(bytes[reader.offset..<end])))
            case .txt:
                var strings: [String] = []
                var position = reader.offset
                while position < end {
                    let count = Int(bytes[position])
                    guard position + 1 + count <= end else { throw WireError(.truncated, "a TXT string past its record") }
                    strings.append(String(decoding: bytes[(position + 1)..<(position + 1 + count)], as: UTF8.self))
                    position += 1 + count
                }
                message.records.append(.text(name: name, strings: strings))
            case .any, nil:
                break
            }
            reader.offset = end
        }
        return message
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func uint16() throws(WireError) -> UInt16 {
            guard offset + 2 <= bytes.count else { throw WireError(.truncated, "a DNS message ends early") }
            defer { offset += 2 }
            return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        }

        /// A name at the current offset, following compression pointers (each must point
        /// backwards, so a loop is impossible); the offset moves past the name's own bytes.
        mutating func name() throws(WireError) -> String {
            var labels: [String] = []
            var position = offset
            var resumeAt: Int?
            var length = 0
            while true {
                guard position < bytes.count else { throw WireError(.truncated, "a DNS name ends early") }
                let count = Int(bytes[position])
                if count == 0 {
                    position += 1
                    break
                }
                if count & 0xc0 == 0xc0 {
                    guard position + 1 < bytes.count else { throw WireError(.truncated, "a DNS name pointer ends early") }
                    let target = (count & 0x3f) << 8 | Int(bytes[position + 1])
                    guard target < position else { throw WireError(.malformed, "a DNS name pointer that does not point back") }
                    if resumeAt == nil { resumeAt = position + 2 }
                    position = target
                    continue
                }
                guard count <= 63 else { throw WireError(.malformed, "a DNS label of \(count) bytes") }
                guard position + 1 + count <= bytes.count else { throw WireError(.truncated, "a DNS label ends early") }
                length += count + 1
                guard length <= 255 else { throw WireError(.malformed, "a DNS name past 255 bytes") }
                labels.append(String(decoding: bytes[(position + 1)..<(position + 1 + count)], as: UTF8.self))
                position += 1 + count
            }
            offset = resumeAt ?? position
            return labels.joined(separator: ".") + "."
        }
    }
}
