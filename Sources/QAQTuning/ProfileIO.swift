import Foundation
import QAQ
#if canImport(Glibc)
import Glibc
#endif

/// Why a profile could not be read or written. Every case names the file; decoding cases name
/// the field (as `plans[2].chosen.variant.threads`) and the line where the JSON shows it.
public enum ProfileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No file at the path.
    case fileNotFound(path: String)
    /// The file exists but cannot be read (permissions, a directory, I/O error).
    case unreadable(path: String, errno: Int32, reason: String)
    /// Larger than any profile should be.
    case tooLarge(path: String, bytes: Int)
    /// The JSON ends in the middle of a value.
    case truncated(path: String, line: Int, column: Int)
    /// Not JSON (or broken JSON) at this line and column.
    case notJSON(path: String, line: Int, column: Int, reason: String)
    /// Written by a newer library with a schema this one does not read.
    case unsupportedSchema(path: String, found: Int, supported: Int, line: Int?)
    /// A required field is absent. `line` is where the enclosing object starts.
    case missingField(path: String, field: String, line: Int?)
    /// A field has the wrong JSON type.
    case wrongType(path: String, field: String, expected: String, found: String, line: Int?)
    /// A field has the right type but an impossible value.
    case invalidValue(path: String, field: String, reason: String, line: Int?)
    /// The profile could not be encoded.
    case encodingFailed(field: String, reason: String)
    /// Writing failed at `operation`; an existing file at `path` was left as it was.
    case writeFailed(path: String, operation: String, errno: Int32, reason: String)

    /// The field the error is about, if any.
    public var field: String? {
        switch self {
        case .missingField(_, let f, _), .wrongType(_, let f, _, _, _), .invalidValue(_, let f, _, _), .encodingFailed(let f, _):
            return f
        case .unsupportedSchema:
            return "schemaVersion"
        default:
            return nil
        }
    }

    /// The line the error is about, if known.
    public var line: Int? {
        switch self {
        case .truncated(_, let l, _), .notJSON(_, let l, _, _): return l
        case .unsupportedSchema(_, _, _, let l), .missingField(_, _, let l), .wrongType(_, _, _, _, let l),
             .invalidValue(_, _, _, let l):
            return l
        default: return nil
        }
    }

    public var description: String {
        func at(_ path: String, _ line: Int?) -> String { line.map { "\(path):\($0)" } ?? path }
        switch self {
        case .fileNotFound(let p):
            return "\(p): no such profile"
        case .unreadable(let p, let e, let r):
            return "\(p): cannot read the profile: \(r) (errno \(e))"
        case .tooLarge(let p, let n):
            return "\(p): \(n) bytes is too large for a profile"
        case .truncated(let p, let l, let c):
            return "\(p):\(l):\(c): the profile is truncated (the JSON ends inside a value)"
        case .notJSON(let p, let l, let c, let r):
            return "\(p):\(l):\(c): not valid JSON: \(r)"
        case .unsupportedSchema(let p, let f, let s, let l):
            return "\(at(p, l)): schemaVersion \(f) is not supported by QAQ \(QAQ.version) (it reads schemas 1…\(s)); re-run qaqtune or update QAQ"
        case .missingField(let p, let f, let l):
            return "\(at(p, l)): missing field \(f)"
        case .wrongType(let p, let f, let e, let found, let l):
            return "\(at(p, l)): field \(f): expected \(e), found \(found)"
        case .invalidValue(let p, let f, let r, let l):
            return "\(at(p, l)): field \(f): \(r)"
        case .encodingFailed(let f, let r):
            return "cannot encode the profile: field \(f): \(r)"
        case .writeFailed(let p, let op, let e, let r):
            return "\(p): cannot write the profile (\(op)): \(r) (errno \(e)); any existing file was left unchanged"
        }
    }
}

/// A problem with a decoded profile's values: where, and why.
public struct ProfileIssue: Sendable, Equatable, CustomStringConvertible {
    public var path: [JSONPathComponent]
    public var reason: String
    public var field: String { renderPath(path) }
    public var description: String { "\(field): \(reason)" }
}

/// Decodes an enum of the schema with a message listing the valid values.
func decodeSchemaEnum<E: RawRepresentable & CaseIterable>(_ decoder: any Decoder) throws -> E where E.RawValue == String {
    let s = try decoder.singleValueContainer().decode(String.self)
    guard let v = E(rawValue: s) else {
        throw DecodingError.dataCorrupted(.init(
            codingPath: decoder.codingPath,
            debugDescription: "\"\(s)\" is not one of \(E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))"))
    }
    return v
}

extension Effort {
    public init(from decoder: any Decoder) throws { self = try decodeSchemaEnum(decoder) }
}
extension MemoryLevel {
    public init(from decoder: any Decoder) throws { self = try decodeSchemaEnum(decoder) }
}
extension Split {
    public init(from decoder: any Decoder) throws { self = try decodeSchemaEnum(decoder) }
}
extension Pinning {
    public init(from decoder: any Decoder) throws { self = try decodeSchemaEnum(decoder) }
}
extension Dot {
    public init(from decoder: any Decoder) throws { self = try decodeSchemaEnum(decoder) }
}
extension CacheInfo.Kind {
    public init(from decoder: any Decoder) throws { self = try decodeSchemaEnum(decoder) }
}
extension FigureSource {
    public init(from decoder: any Decoder) throws { self = try decodeSchemaEnum(decoder) }
}

// MARK: - Reading

extension Profile {
    /// Upper bounds of the counts in a profile (anything larger is damage, not a machine).
    public static let limits = (headDim: 1 << 16, heads: 1 << 16, tokens: 1 << 40, threads: 1 << 16)

    /// Largest profile file read (a measured profile is a few hundred KiB at most).
    public static let maxFileBytes = 16 << 20

    /// Reads and checks a profile file. Never writes.
    public static func load(from path: String) throws(ProfileError) -> Profile {
        try decode(readProfileFile(path), source: path)
    }

    /// Decodes and checks profile JSON; `source` names it in errors.
    public static func decode(_ bytes: [UInt8], source: String = "<data>") throws(ProfileError) -> Profile {
        let root: JSONNode
        do {
            root = try JSONParser.parse(bytes)
        } catch {
            let (l, c) = lineAndColumn(of: error.offset, in: bytes)
            if error.atEnd { throw .truncated(path: source, line: l, column: c) }
            throw .notJSON(path: source, line: l, column: c, reason: error.message)
        }
        func line(_ node: JSONNode) -> Int { lineAndColumn(of: node.offset, in: bytes).line }

        // The schema version first: a newer schema may have different fields.
        guard case .object(_, let members) = root.value else {
            throw .wrongType(path: source, field: "(root)", expected: "an object", found: root.kindDescription, line: line(root))
        }
        guard let versionNode = members["schemaVersion"] else {
            throw .missingField(path: source, field: "schemaVersion", line: line(root))
        }
        guard case .number(let text) = versionNode.value, let version = Int(text) else {
            throw .wrongType(path: source, field: "schemaVersion", expected: "an integer", found: versionNode.kindDescription,
                             line: line(versionNode))
        }
        if version > currentSchemaVersion {
            throw .unsupportedSchema(path: source, found: version, supported: currentSchemaVersion, line: line(versionNode))
        }
        if version < 1 {
            throw .invalidValue(path: source, field: "schemaVersion", reason: "\(version) is not a schema version (they start at 1)",
                                line: line(versionNode))
        }

        let profile: Profile
        do {
            profile = try TreeDecoder.decode(Profile.self, from: root)
        } catch let f as TreeDecodingFailure {
            switch f.kind {
            case .missingKey(let key):
                throw .missingField(path: source, field: renderPath(f.path + [.key(key)]), line: line(f.node))
            case .typeMismatch(let expected):
                throw .wrongType(path: source, field: renderPath(f.path), expected: expected, found: f.node.kindDescription,
                                 line: line(f.node))
            case .invalid(let reason):
                throw .invalidValue(path: source, field: renderPath(f.path), reason: reason, line: line(f.node))
            }
        } catch let e as DecodingError {
            let (codingPath, message): ([any CodingKey], String)
            switch e {
            case .dataCorrupted(let c): (codingPath, message) = (c.codingPath, c.debugDescription)
            case .keyNotFound(let k, let c): (codingPath, message) = (c.codingPath + [k], "missing")
            case .typeMismatch(_, let c): (codingPath, message) = (c.codingPath, c.debugDescription)
            case .valueNotFound(_, let c): (codingPath, message) = (c.codingPath, c.debugDescription)
            @unknown default: (codingPath, message) = ([], "\(e)")
            }
            let p = jsonPath(codingPath)
            throw .invalidValue(path: source, field: renderPath(p), reason: message, line: line(root.deepest(along: p)))
        } catch {
            throw .invalidValue(path: source, field: "(root)", reason: "\(error)", line: nil)
        }

        if let issue = profile.validationIssue() {
            throw .invalidValue(path: source, field: issue.field, reason: issue.reason, line: line(root.deepest(along: issue.path)))
        }
        return profile
    }

    /// The first value that no profile may hold (nil if none). Checked on load and before writing.
    public func validationIssue() -> ProfileIssue? {
        var issue: ProfileIssue?
        func check(_ ok: Bool, _ path: [JSONPathComponent], _ reason: @autoclosure () -> String) {
            if !ok && issue == nil { issue = ProfileIssue(path: path, reason: reason()) }
        }
        func positive(_ v: Int, _ path: [JSONPathComponent]) { check(v >= 1, path, "must be ≥ 1, is \(v)") }
        func within(_ v: Int, _ limit: Int, _ path: [JSONPathComponent]) {
            check(v >= 1 && v <= limit, path, v < 1 ? "must be ≥ 1, is \(v)" : "must be ≤ \(limit), is \(v)")
        }
        func nonNegative(_ v: Int, _ path: [JSONPathComponent]) { check(v >= 0, path, "must be ≥ 0, is \(v)") }
        func rate(_ v: Double?, _ path: [JSONPathComponent], strictlyPositive: Bool = false) {
            guard let v else { return }
            check(v.isFinite && (strictlyPositive ? v > 0 : v >= 0), path,
                  "must be a finite number \(strictlyPositive ? ">" : "≥") 0, is \(v)")
        }

        check((1...Profile.currentSchemaVersion).contains(schemaVersion), [.key("schemaVersion")],
              "\(schemaVersion) is not a supported schema (1…\(Profile.currentSchemaVersion))")
        if let b = qualityBudget { check(b.isFinite && b > 0, [.key("qualityBudget")], "must be a finite number > 0, is \(b)") }
        if let s = measureSeconds { check(s.isFinite && s >= 0, [.key("measureSeconds")], "must be a finite number ≥ 0, is \(s)") }
        check(!libraryVersion.isEmpty, [.key("libraryVersion")], "must not be empty")
        check(isISO8601(createdAt), [.key("createdAt")], "\"\(createdAt)\" is not an ISO-8601 date-time (e.g. 2025-06-01T12:00:00Z)")

        let h: [JSONPathComponent] = [.key("host")]
        let hexDigits = Set("0123456789abcdef")
        check(host.id.count == 16 && host.id.allSatisfy { hexDigits.contains($0) }, h + [.key("id")],
              "\"\(host.id)\" is not 16 lowercase hex digits")
        check(host.id == host.computedID, h + [.key("id")],
              "\"\(host.id)\" does not match the host fields (they hash to \(host.computedID)): the profile was edited or damaged")
        nonNegative(host.packages, h + [.key("packages")])
        nonNegative(host.numaNodes, h + [.key("numaNodes")])
        positive(host.cores, h + [.key("cores")])
        check(host.pus >= host.cores, h + [.key("pus")], "must be ≥ cores (\(host.cores)), is \(host.pus)")
        for (i, c) in host.caches.enumerated() {
            let p = h + [.key("caches"), .index(i)]
            check((1...4).contains(c.level), p + [.key("level")], "must be 1…4, is \(c.level)")
            nonNegative(c.size, p + [.key("size")])
            nonNegative(c.lineSize, p + [.key("lineSize")])
            nonNegative(c.pusPerInstance, p + [.key("pusPerInstance")])
            positive(c.instances, p + [.key("instances")])
        }

        for (i, r) in roofs.enumerated() {
            let p: [JSONPathComponent] = [.key("roofs"), .index(i)]
            within(r.threads, Profile.limits.threads, p + [.key("threads")])
            positive(r.bytes, p + [.key("bytes")])
            rate(r.gbps, p + [.key("gbps")])
            rate(r.medianGBps, p + [.key("medianGBps")])
        }

        var seen: [Problem: Int] = [:]
        for (i, plan) in plans.enumerated() {
            let p: [JSONPathComponent] = [.key("plans"), .index(i)]
            let q = p + [.key("problem")]
            within(plan.problem.headDim, Profile.limits.headDim, q + [.key("headDim")])
            within(plan.problem.kvHeads, Profile.limits.heads, q + [.key("kvHeads")])
            within(plan.problem.gqa, Profile.limits.heads, q + [.key("gqa")])
            within(plan.problem.contextBucket, Profile.limits.tokens, q + [.key("contextBucket")])
            within(plan.problem.threads, Profile.limits.threads, q + [.key("threads")])
            check(!plan.problem.bitMix.isEmpty, q + [.key("bitMix")], "must not be empty")
            if let j = seen[plan.problem] {
                check(false, q, "the same problem as plans[\(j)]")
            }
            seen[plan.problem] = i
            let candidates = [(p + [.key("chosen")], plan.chosen)]
                + plan.runnersUp.enumerated().map { (p + [.key("runnersUp"), .index($0.offset)], $0.element) }
                + (plan.estimateDefault.map { [(p + [.key("estimateDefault")], $0)] } ?? [])
            if let s = plan.speedup { rate(s, p + [.key("speedup")], strictlyPositive: true) }
            for (j, q) in (plan.quality ?? []).enumerated() {
                let qp = p + [.key("quality"), .index(j)]
                within(q.groupSize, Profile.limits.headDim, qp + [.key("groupSize")])
                rate(q.attentionRelError, qp + [.key("attentionRelError")])
                rate(q.int8AttentionRelError, qp + [.key("int8AttentionRelError")])
            }
            for (mp, m) in candidates {
                let v = mp + [.key("variant")]
                check(!m.variant.layout.isEmpty, v + [.key("layout")], "must not be empty")
                within(m.variant.pageTokens, Profile.limits.tokens, v + [.key("pageTokens")])
                within(m.variant.groupSize, Profile.limits.headDim, v + [.key("groupSize")])
                within(m.variant.tile, Profile.limits.tokens, v + [.key("tile")])
                within(m.variant.threads, Profile.limits.threads, v + [.key("threads")])
                check(m.variant.threads <= plan.problem.threads, v + [.key("threads")],
                      "\(m.variant.threads) exceeds the \(plan.problem.threads) thread(s) the problem allows")
                within(m.variant.chunkTokens, Profile.limits.tokens, v + [.key("chunkTokens")])
                rate(m.nsPerTokenKVHead, mp + [.key("nsPerTokenKVHead")], strictlyPositive: true)
                rate(m.gbps, mp + [.key("gbps")])
                rate(m.minNsPerTokenKVHead, mp + [.key("minNsPerTokenKVHead")], strictlyPositive: true)
                if let n = m.samples { nonNegative(n, mp + [.key("samples")]) }
                if let n = m.rejectedSamples { nonNegative(n, mp + [.key("rejectedSamples")]) }
                if let f = m.foreignShare { check(f.isFinite && f >= 0 && f <= 1, mp + [.key("foreignShare")], "must be within 0…1, is \(f)") }
            }
        }
        return issue
    }
}

/// The bytes of a profile file, with typed errors.
func readProfileFile(_ path: String) throws(ProfileError) -> [UInt8] {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore it).
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    if fd < 0 {
        let e = errno
        if e == ENOENT || e == ENOTDIR { throw .fileNotFound(path: path) }
        throw .unreadable(path: path, errno: e, reason: errnoText(e))
    }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) == 0 {
        if (st.st_mode & S_IFMT) == S_IFDIR { throw .unreadable(path: path, errno: EISDIR, reason: "it is a directory") }
        if (st.st_mode & S_IFMT) != S_IFREG { throw .unreadable(path: path, errno: EINVAL, reason: "it is not a regular file") }
        if Int(st.st_size) > Profile.maxFileBytes { throw .tooLarge(path: path, bytes: Int(st.st_size)) }
    }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            let e = errno
            if e == EINTR { continue }
            throw .unreadable(path: path, errno: e, reason: errnoText(e))
        }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
        if out.count > Profile.maxFileBytes { throw .tooLarge(path: path, bytes: out.count) }
    }
    return out
}

func errnoText(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    return String(cString: s)
}

// MARK: - Writing

extension Profile {
    /// The profile as human-readable JSON: sorted keys, pretty-printed, newline-terminated.
    public func encoded() throws(ProfileError) -> [UInt8] {
        if let issue = validationIssue() { throw .encodingFailed(field: issue.field, reason: issue.reason) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            var bytes = [UInt8](try encoder.encode(self))
            bytes.append(UInt8(ascii: "\n"))
            return bytes
        } catch let EncodingError.invalidValue(_, context) {
            throw .encodingFailed(field: renderPath(jsonPath(context.codingPath)), reason: context.debugDescription)
        } catch {
            throw .encodingFailed(field: "(root)", reason: "\(error)")
        }
    }

    /// Writes the profile atomically: a temporary file in the same directory, fsync, rename
    /// over `path`, fsync of the directory. On any failure the temporary file is removed and
    /// an existing file at `path` is left exactly as it was. The directory must exist.
    public func write(to path: String) throws(ProfileError) {
        try atomicWrite(encoded(), to: path)
    }
}

/// Writes `bytes` to `path` atomically (temp + fsync + rename); see ``Profile/write(to:)``.
public func atomicWrite(_ bytes: [UInt8], to path: String) throws(ProfileError) {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !name.isEmpty, name != ".", name != ".." else {
        throw .writeFailed(path: path, operation: "name a file", errno: EISDIR, reason: "the path names a directory")
    }
    var rng = SystemRandomNumberGenerator()
    let temp = "\(directory)/.\(name).tmp-\(getpid())-\(String(rng.next() as UInt32, radix: 16))"

    func failure(_ operation: String) -> ProfileError {
        let e = errno
        return .writeFailed(path: path, operation: operation, errno: e, reason: errnoText(e))
    }

    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure("create a temporary file in \(directory)") }
    var fdOpen = true
    var renamed = false
    defer {
        if fdOpen { close(fd) }
        if !renamed { unlink(temp) }
    }
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        if n < 0 {
            if errno == EINTR { continue }
            throw failure("write \(temp)")
        }
        written += n
    }
    guard fsync(fd) == 0 else { throw failure("fsync \(temp)") }
    fdOpen = false
    guard close(fd) == 0 else { throw failure("close \(temp)") }
    guard rename(temp, path) == 0 else { throw failure("rename \(temp) over \(path)") }
    renamed = true
    // Make the rename itself durable (best effort: some file systems refuse fsync on directories).
    let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
        _ = fsync(dfd)
        close(dfd)
    }
}
