// A small, strict JSON reader (RFC 8259) that keeps the byte offset of every value, and a
// `Decoder` over its tree. Profiles are read through it instead of Foundation's JSONDecoder
// because a bad profile must be reported with the field *and the line*: Foundation on Linux
// reports syntax errors, and non-integral numbers in `Int` fields, as "The given data was not
// valid JSON." with no coding path, offset or underlying error.

/// One step of a path into a JSON document: an object key or an array index.
public enum JSONPathComponent: Hashable, Sendable, CustomStringConvertible {
    case key(String)
    case index(Int)

    public var description: String {
        switch self {
        case .key(let k): return k
        case .index(let i): return "[\(i)]"
        }
    }
}

/// Renders a path as `plans[2].chosen.variant.threads` (`(root)` for the empty path).
func renderPath(_ path: [JSONPathComponent]) -> String {
    var out = ""
    for c in path {
        switch c {
        case .key(let k): out += out.isEmpty ? k : ".\(k)"
        case .index(let i): out += "[\(i)]"
        }
    }
    return out.isEmpty ? "(root)" : out
}

/// A parsed JSON value with the byte offset where it starts.
struct JSONNode: Sendable {
    indirect enum Value: Sendable {
        case null
        case bool(Bool)
        /// The number's literal text, kept so that integers are read exactly.
        case number(String)
        case string(String)
        case array([JSONNode])
        /// Keys in document order, and the members.
        case object([String], [String: JSONNode])
    }

    var value: Value
    var offset: Int

    /// What this value is, for error messages ("a string", "the number 1.5", …).
    var kindDescription: String {
        switch value {
        case .null: return "null"
        case .bool(let b): return "the boolean \(b)"
        case .number(let n): return n.count <= 40 ? "the number \(n)" : "a number"
        case .string(let s): return s.count <= 40 ? "the string \"\(s)\"" : "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The node at `path`, or the deepest existing node on the way there.
    func deepest(along path: [JSONPathComponent]) -> JSONNode {
        var node = self
        for c in path {
            switch (c, node.value) {
            case (.key(let k), .object(_, let members)):
                guard let next = members[k] else { return node }
                node = next
            case (.index(let i), .array(let items)):
                guard items.indices.contains(i) else { return node }
                node = items[i]
            default:
                return node
            }
        }
        return node
    }
}

/// A JSON syntax error at a byte offset.
struct JSONSyntaxError: Error, Sendable {
    var offset: Int
    var message: String
    /// True when the input ended inside a value (a truncated document).
    var atEnd: Bool
}

/// Line and column (both from 1; the column counts bytes) of a byte offset.
func lineAndColumn(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
    var line = 1
    var lineStart = 0
    let end = min(max(offset, 0), bytes.count)
    var i = 0
    while i < end {
        if bytes[i] == 0x0A { line += 1; lineStart = i + 1 }
        i += 1
    }
    return (line, end - lineStart + 1)
}

/// Recursive-descent JSON parser with a nesting limit (no stack overflow on hostile input).
struct JSONParser {
    static let maxDepth = 256

    private let bytes: [UInt8]
    private var i = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Parses a whole document: one value, surrounded only by whitespace (a UTF-8 BOM is skipped).
    static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONNode {
        var p = JSONParser(bytes)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { p.i = 3 }
        p.skipWhitespace()
        if p.i == bytes.count {
            throw JSONSyntaxError(offset: p.i, message: bytes.isEmpty ? "the file is empty" : "no JSON value, only whitespace",
                                  atEnd: false)
        }
        let node = try p.value(depth: 0)
        p.skipWhitespace()
        if p.i != bytes.count {
            throw JSONSyntaxError(offset: p.i, message: "unexpected \(p.describeByte()) after the end of the JSON value", atEnd: false)
        }
        return node
    }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private func describeByte() -> String {
        guard i < bytes.count else { return "end of file" }
        let b = bytes[i]
        if b >= 0x21 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    private func fail(_ message: String) -> JSONSyntaxError {
        if i >= bytes.count {
            return JSONSyntaxError(offset: bytes.count, message: "unexpected end of file (\(message))", atEnd: true)
        }
        return JSONSyntaxError(offset: i, message: "unexpected \(describeByte()): \(message)", atEnd: false)
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONNode {
        guard depth < JSONParser.maxDepth else {
            throw JSONSyntaxError(offset: i, message: "values nested deeper than \(JSONParser.maxDepth) levels", atEnd: false)
        }
        guard i < bytes.count else { throw fail("expected a value") }
        let start = i
        switch bytes[i] {
        case UInt8(ascii: "{"): return JSONNode(value: try object(depth: depth), offset: start)
        case UInt8(ascii: "["): return JSONNode(value: try array(depth: depth), offset: start)
        case UInt8(ascii: "\""): return JSONNode(value: .string(try string()), offset: start)
        case UInt8(ascii: "t"): try literal(Array("true".utf8)); return JSONNode(value: .bool(true), offset: start)
        case UInt8(ascii: "f"): try literal(Array("false".utf8)); return JSONNode(value: .bool(false), offset: start)
        case UInt8(ascii: "n"): try literal(Array("null".utf8)); return JSONNode(value: .null, offset: start)
        case UInt8(ascii: "-"), 0x30...0x39:
            return JSONNode(value: .number(try number()), offset: start)
        default:
            throw fail("expected a value (object, array, string, number, true, false or null)")
        }
    }

    private mutating func literal(_ word: [UInt8]) throws(JSONSyntaxError) {
        for b in word {
            guard i < bytes.count, bytes[i] == b else { throw fail("expected '\(String(decoding: word, as: UTF8.self))'") }
            i += 1
        }
    }

    private mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONNode.Value {
        i += 1  // {
        var keys: [String] = []
        var members: [String: JSONNode] = [:]
        skipWhitespace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "}") { i += 1; return .object(keys, members) }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
            let keyOffset = i
            let key = try string()
            if members[key] != nil {
                throw JSONSyntaxError(offset: keyOffset, message: "duplicate key \"\(key)\"", atEnd: false)
            }
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
            i += 1
            skipWhitespace()
            let member = try value(depth: depth + 1)
            keys.append(key)
            members[key] = member
            skipWhitespace()
            guard i < bytes.count else { throw fail("expected ',' or '}'") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(keys, members) }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONNode.Value {
        i += 1  // [
        var items: [JSONNode] = []
        skipWhitespace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth + 1))
            skipWhitespace()
            guard i < bytes.count else { throw fail("expected ',' or ']'") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func number() throws(JSONSyntaxError) -> String {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, JSONParser.isDigit(bytes[i]) else { throw fail("expected a digit") }
        if bytes[i] == 0x30 {
            i += 1
        } else {
            while i < bytes.count && JSONParser.isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, JSONParser.isDigit(bytes[i]) else { throw fail("expected a digit after '.'") }
            while i < bytes.count && JSONParser.isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < bytes.count, JSONParser.isDigit(bytes[i]) else { throw fail("expected a digit in the exponent") }
            while i < bytes.count && JSONParser.isDigit(bytes[i]) { i += 1 }
        }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < bytes.count else { throw fail("expected 4 hex digits after \\u") }
            let b = bytes[i]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("expected 4 hex digits after \\u")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        let quote = i
        i += 1  // opening quote
        var out: [UInt8] = []
        var runStart = i
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                out.append(contentsOf: bytes[runStart..<i])
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else {
                    throw JSONSyntaxError(offset: quote, message: "the string is not valid UTF-8", atEnd: false)
                }
                return s
            }
            if b < 0x20 { throw fail("control characters must be escaped in strings") }
            if b != UInt8(ascii: "\\") { i += 1; continue }
            out.append(contentsOf: bytes[runStart..<i])
            i += 1
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired UTF-16 surrogate in a \\u escape")
                    }
                    i += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw fail("unpaired UTF-16 surrogate in a \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                i -= 1
                throw fail("invalid escape")
            }
            runStart = i
        }
    }
}

// MARK: - Decoder over the tree

/// Why decoding the tree failed, with the path and the offending (or enclosing) value.
struct TreeDecodingFailure: Error {
    enum Kind {
        case missingKey(String)
        case typeMismatch(expected: String)
        case invalid(String)
    }
    var kind: Kind
    var path: [JSONPathComponent]
    var node: JSONNode
}

private struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ i: Int) { intValue = i }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { return nil }
}

/// Converts a Codable coding path to JSON path components (keys with an int value are indexes).
func jsonPath(_ codingPath: [any CodingKey]) -> [JSONPathComponent] {
    codingPath.map { k in k.intValue.map { .index($0) } ?? .key(k.stringValue) }
}

struct TreeDecoder: Decoder {
    let node: JSONNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(node: JSONNode, codingPath: [any CodingKey] = []) {
        self.node = node
        self.codingPath = codingPath
    }

    static func decode<T: Decodable>(_ type: T.Type, from node: JSONNode) throws -> T {
        try T(from: TreeDecoder(node: node))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let keys, let members) = node.value else {
            throw TreeDecodingFailure(kind: .typeMismatch(expected: "an object"), path: jsonPath(codingPath), node: node)
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(node: node, keys: keys, members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = node.value else {
            throw TreeDecodingFailure(kind: .typeMismatch(expected: "an array"), path: jsonPath(codingPath), node: node)
        }
        return UnkeyedContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValue(node: node, codingPath: codingPath)
    }
}

/// Scalar reads shared by the three container kinds.
private enum Scalar {
    static func mismatch(_ expected: String, _ node: JSONNode, _ path: [any CodingKey]) -> TreeDecodingFailure {
        TreeDecodingFailure(kind: .typeMismatch(expected: expected), path: jsonPath(path), node: node)
    }

    static func bool(_ node: JSONNode, _ path: [any CodingKey]) throws -> Bool {
        guard case .bool(let b) = node.value else { throw mismatch("a boolean", node, path) }
        return b
    }

    static func string(_ node: JSONNode, _ path: [any CodingKey]) throws -> String {
        guard case .string(let s) = node.value else { throw mismatch("a string", node, path) }
        return s
    }

    static func double(_ node: JSONNode, _ path: [any CodingKey]) throws -> Double {
        guard case .number(let text) = node.value else { throw mismatch("a number", node, path) }
        guard let d = Double(text), d.isFinite else {
            throw TreeDecodingFailure(kind: .invalid("\(text) is out of range"), path: jsonPath(path), node: node)
        }
        return d
    }

    static func integer<T: FixedWidthInteger>(_ node: JSONNode, _ path: [any CodingKey], _: T.Type) throws -> T {
        guard case .number(let text) = node.value else { throw mismatch("an integer", node, path) }
        if let v = T(text) { return v }
        if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
            throw TreeDecodingFailure(kind: .invalid("\(text) is out of range"), path: jsonPath(path), node: node)
        }
        throw mismatch("an integer", node, path)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ node: JSONNode, _ path: [any CodingKey]) throws -> T {
        try T(from: TreeDecoder(node: node, codingPath: path))
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let node: JSONNode
    let keys: [String]
    let members: [String: JSONNode]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONNode {
        guard let m = members[key.stringValue] else {
            throw TreeDecodingFailure(kind: .missingKey(key.stringValue), path: jsonPath(codingPath), node: node)
        }
        return m
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard case .null = try member(key).value else { return false }
        return true
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try Scalar.bool(member(key), codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try Scalar.string(member(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try Scalar.double(member(key), codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try Scalar.double(member(key), codingPath + [key])) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try Scalar.integer(member(key), codingPath + [key], Int.self) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try Scalar.integer(member(key), codingPath + [key], Int8.self) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try Scalar.integer(member(key), codingPath + [key], Int16.self) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try Scalar.integer(member(key), codingPath + [key], Int32.self) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try Scalar.integer(member(key), codingPath + [key], Int64.self) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try Scalar.integer(member(key), codingPath + [key], UInt.self) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try Scalar.integer(member(key), codingPath + [key], UInt8.self) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try Scalar.integer(member(key), codingPath + [key], UInt16.self) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try Scalar.integer(member(key), codingPath + [key], UInt32.self) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try Scalar.integer(member(key), codingPath + [key], UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try Scalar.decode(type, member(key), codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try TreeDecoder(node: member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TreeDecoder(node: member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder {
        TreeDecoder(node: members["super"] ?? JSONNode(value: .null, offset: node.offset), codingPath: codingPath)
    }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        TreeDecoder(node: try member(key), codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONNode]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [JSONNode], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> (JSONNode, [any CodingKey]) {
        guard currentIndex < items.count else {
            let last = items.last ?? JSONNode(value: .array([]), offset: 0)
            throw TreeDecodingFailure(kind: .invalid("the array has too few elements"), path: jsonPath(codingPath), node: last)
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard currentIndex < items.count else { return false }
        if case .null = items[currentIndex].value { currentIndex += 1; return true }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (n, p) = try next()
        return try Scalar.decode(type, n, p)
    }
    mutating func decode(_ type: Bool.Type) throws -> Bool { let (n, p) = try next(); return try Scalar.bool(n, p) }
    mutating func decode(_ type: String.Type) throws -> String { let (n, p) = try next(); return try Scalar.string(n, p) }
    mutating func decode(_ type: Double.Type) throws -> Double { let (n, p) = try next(); return try Scalar.double(n, p) }
    mutating func decode(_ type: Float.Type) throws -> Float { let (n, p) = try next(); return Float(try Scalar.double(n, p)) }
    mutating func decode(_ type: Int.Type) throws -> Int { let (n, p) = try next(); return try Scalar.integer(n, p, Int.self) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { let (n, p) = try next(); return try Scalar.integer(n, p, Int8.self) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { let (n, p) = try next(); return try Scalar.integer(n, p, Int16.self) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { let (n, p) = try next(); return try Scalar.integer(n, p, Int32.self) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { let (n, p) = try next(); return try Scalar.integer(n, p, Int64.self) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { let (n, p) = try next(); return try Scalar.integer(n, p, UInt.self) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { let (n, p) = try next(); return try Scalar.integer(n, p, UInt8.self) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { let (n, p) = try next(); return try Scalar.integer(n, p, UInt16.self) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { let (n, p) = try next(); return try Scalar.integer(n, p, UInt32.self) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { let (n, p) = try next(); return try Scalar.integer(n, p, UInt64.self) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (n, p) = try next()
        return try TreeDecoder(node: n, codingPath: p).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (n, p) = try next()
        return try TreeDecoder(node: n, codingPath: p).unkeyedContainer()
    }
    mutating func superDecoder() throws -> any Decoder {
        let (n, p) = try next()
        return TreeDecoder(node: n, codingPath: p)
    }
}

private struct SingleValue: SingleValueDecodingContainer {
    let node: JSONNode
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool {
        if case .null = node.value { return true }
        return false
    }
    func decode(_ type: Bool.Type) throws -> Bool { try Scalar.bool(node, codingPath) }
    func decode(_ type: String.Type) throws -> String { try Scalar.string(node, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try Scalar.double(node, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { Float(try Scalar.double(node, codingPath)) }
    func decode(_ type: Int.Type) throws -> Int { try Scalar.integer(node, codingPath, Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try Scalar.integer(node, codingPath, Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try Scalar.integer(node, codingPath, Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try Scalar.integer(node, codingPath, Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try Scalar.integer(node, codingPath, Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try Scalar.integer(node, codingPath, UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try Scalar.integer(node, codingPath, UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try Scalar.integer(node, codingPath, UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try Scalar.integer(node, codingPath, UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try Scalar.integer(node, codingPath, UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try Scalar.decode(type, node, codingPath) }
}
