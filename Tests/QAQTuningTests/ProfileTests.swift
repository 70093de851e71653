import Foundation
import QAQ
import QAQTuning
import Testing

@Suite("Profile schema, atomic writer and loader")
struct ProfileTests {
    @Test("round trip through a file: equal value, sorted pretty JSON, named by the fingerprint, no temp files left")
    func roundTrip() throws {
        let dir = try makeTempDirectory()
        defer { removeTree(dir) }
        let profile = sampleProfile()
        let path = dir + "/" + Profile.fileName(for: profile.host)
        try profile.write(to: path)
        #expect(directoryEntries(dir) == ["\(profile.host.id).json"])
        let loaded = try Profile.load(from: path)
        #expect(loaded == profile)

        let text = String(decoding: readBytes(path) ?? [], as: UTF8.self)
        #expect(text.hasSuffix("}\n"))
        #expect(text.contains("\n  \"createdAt\" : \"2026-01-02T03:04:05Z\",\n"), "pretty-printed, two-space indent")
        let topKeys = ["createdAt", "effort", "host", "libraryVersion", "plans", "roofs", "schemaVersion"]
        let positions = topKeys.map { text.range(of: "\n  \"\($0)\" : ")?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil })
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "keys sorted")
        #expect(!text.contains("nsPerTokenKVHead\" : null"), "absent timings are omitted, not null")

        // Deterministic bytes: encoding twice gives the same file.
        #expect(try profile.encoded() == readBytes(path))

        // Overwriting with a new profile replaces it whole.
        var newer = profile
        newer.effort = .patient
        try newer.write(to: path)
        #expect(try Profile.load(from: path) == newer)
        #expect(directoryEntries(dir) == ["\(profile.host.id).json"])
    }

    @Test("this host's estimate profile round-trips and reports exact match")
    func thisHostEstimate() throws {
        let dir = try makeTempDirectory()
        defer { removeTree(dir) }
        let p = Estimate.profile(for: [Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 2048, threads: 2)], topology: .current)
        let path = QAQRuntime.defaultProfilePath(directory: dir)
        #expect(path.hasSuffix("/\(HostFingerprint.current.id).json"))
        try p.write(to: path)
        let rt = try QAQRuntime(profile: path)
        #expect(rt.source == .profile(path: path, match: .exact))
        #expect(rt.warning == nil && rt.note == nil)
        #expect(rt.profile == p)
    }

    // MARK: Bad profiles

    /// Writes `bytes` as a profile, loads it, and checks that the load fails without touching
    /// the file and that an engine falls back to estimate-level defaults with one warning.
    func expectRejected(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> ProfileError? {
        let dir = try makeTempDirectory("badprofile")
        defer { removeTree(dir) }
        let path = dir + "/bad.json"
        try writeBytes(bytes, to: path)
        var caught: ProfileError?
        do {
            _ = try Profile.load(from: path)
            Issue.record("the bad profile loaded", sourceLocation: sourceLocation)
        } catch {
            caught = error
            #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
        }
        let rt = QAQRuntime.loadingOrDefaults(profile: path, topology: syntheticTopology(), isa: .v4)
        #expect(rt.source == .estimate && rt.profile == nil, sourceLocation: sourceLocation)
        #expect(rt.warning != nil && rt.note == nil, sourceLocation: sourceLocation)
        _ = rt.plan(for: Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 1024, threads: 2))
        #expect(readBytes(path) == bytes, "the file is untouched", sourceLocation: sourceLocation)
        #expect(directoryEntries(dir) == ["bad.json"], sourceLocation: sourceLocation)
        return caught
    }

    func sampleText() throws -> String { String(decoding: try sampleProfile().encoded(), as: UTF8.self) }

    @Test("truncated at every cut: a typed error (truncated) with a line, never a crash")
    func truncated() throws {
        let full = try sampleProfile().encoded()
        var truncatedCount = 0
        for cut in stride(from: 0, to: full.count - 2, by: 41) {
            let prefix = Array(full[0..<cut])
            do {
                _ = try Profile.decode(prefix, source: "cut")
                Issue.record("a profile cut at \(cut) of \(full.count) bytes decoded")
            } catch .truncated(_, let line, _) {
                truncatedCount += 1
                #expect(line == prefix.filter { $0 == 0x0A }.count + 1, "the line where the file ends")
            } catch .notJSON(_, let line, _, _) {
                #expect(cut == 0, "only the empty file is 'not JSON' rather than truncated")
                #expect(line == 1)
            } catch {
                Issue.record("cut at \(cut): unexpected \(error)")
            }
        }
        #expect(truncatedCount > 10)
        let e = try expectRejected(Array(full[0..<(full.count / 2)]))
        guard case .truncated = e else { Issue.record("expected .truncated, got \(String(describing: e))"); return }
    }

    @Test("not JSON: empty, text, binary, HTML, a syntax error on a known line, trailing garbage")
    func notJSON() throws {
        let cases: [(String, [UInt8], Int)] = [
            ("empty", [], 1),
            ("whitespace", Array("  \n\n ".utf8), 3),
            ("text", Array("hello, profile".utf8), 1),
            ("binary", [0x00, 0xFF, 0x13, 0x37, 0x0A, 0x80], 1),
            ("html", Array("<html>\n<body>404</body></html>".utf8), 1),
            ("yaml", Array("schemaVersion: 1\neffort: measure\n".utf8), 1),
        ]
        for (name, bytes, line) in cases {
            let e = try expectRejected(bytes)
            guard case .notJSON(_, let l, _, _) = e else { Issue.record("\(name): expected .notJSON, got \(String(describing: e))"); continue }
            #expect(l == line, "\(name)")
        }
        // A syntax error in the middle: a missing comma after "effort".
        let text = try sampleText()
        let (broken, line) = replacingOnce(text, "\"effort\" : \"measure\",", with: "\"effort\" : \"measure\"")
        let e = try expectRejected(Array(broken.utf8))
        guard case .notJSON(_, let l, _, let reason) = e else { Issue.record("expected .notJSON, got \(String(describing: e))"); return }
        #expect(l == line + 1, "reported where the next key starts")
        #expect(reason.contains("expected ',' or '}'"))
        // Trailing garbage, invalid UTF-8 in a string, a duplicate key, hostile nesting.
        for bad in [text + "}", text.replacingOccurrences(of: "\"k4v3\"", with: "\"k4\u{FFFD}v3\""),
                    text.replacingOccurrences(of: "\"effort\" : \"measure\",", with: "\"effort\" : \"measure\", \"effort\" : \"patient\",")] {
            var bytes = Array(bad.utf8)
            if bad.contains("\u{FFFD}") {
                // Replace the encoded U+FFFD with a lone continuation byte: invalid UTF-8.
                let r = Array("\u{FFFD}".utf8)
                if let i = (0...(bytes.count - r.count)).first(where: { Array(bytes[$0..<$0 + r.count]) == r }) {
                    bytes.replaceSubrange(i..<i + r.count, with: [0x80])
                }
            }
            let e = try expectRejected(bytes)
            guard case .notJSON = e else { Issue.record("expected .notJSON, got \(String(describing: e))"); continue }
        }
        let deep = try expectRejected(Array((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8))
        guard case .notJSON(_, _, _, let reason2) = deep else { Issue.record("expected .notJSON for deep nesting"); return }
        #expect(reason2.contains("nested deeper"))
    }

    @Test("wrong types name the field and the line")
    func wrongTypes() throws {
        let text = try sampleText()
        let cases: [(old: String, new: String, field: String, expected: String)] = [
            ("\"tile\" : 13", "\"tile\" : 1.5", "plans[0].chosen.variant.tile", "an integer"),
            ("\"tile\" : 13", "\"tile\" : \"13\"", "plans[0].chosen.variant.tile", "an integer"),
            ("\"tile\" : 11", "\"tile\" : true", "plans[0].runnersUp[0].variant.tile", "an integer"),
            ("\"gbps\" : 41.5", "\"gbps\" : \"fast\"", "plans[0].chosen.gbps", "a number"),
            ("\"effort\" : \"measure\"", "\"effort\" : 3", "effort", "a string"),
            ("\"schemaVersion\" : 3", "\"schemaVersion\" : \"3\"", "schemaVersion", "an integer"),
            ("\"schemaVersion\" : 3", "\"schemaVersion\" : 3.0", "schemaVersion", "an integer"),
            ("\"dot\" : \"int8\"", "\"dot\" : 8", "plans[0].runnersUp[0].variant.dot", "a string"),
            ("\"cores\" : 2", "\"cores\" : [2]", "host.cores", "an integer"),
            ("\"headDim\" : 96", "\"headDim\" : null", "plans[0].problem.headDim", "an integer"),
            ("\"layout\" : \"tokens-in-lanes\"", "\"layout\" : {}", "plans[0].runnersUp[0].layout", "a string"),
        ]
        for c in cases {
            let (bad, line) = replacingOnce(text, c.old, with: c.new)
            let e = try expectRejected(Array(bad.utf8))
            guard case .wrongType(_, let field, let expected, _, let l) = e else {
                Issue.record("\(c.new): expected .wrongType, got \(String(describing: e))")
                continue
            }
            #expect(field == c.field.replacingOccurrences(of: "runnersUp[0].layout", with: "runnersUp[0].variant.layout"))
            #expect(expected == c.expected)
            #expect(l == line, "\(c.new)")
        }
        // The whole document is an array, the roofs an object.
        let root = try expectRejected(Array("[\(text)]".utf8))
        #expect(root?.field == "(root)")
        let roofsLine = lineOf("\"roofs\" : [", in: text)
        let bracket = text.range(of: "\"roofs\" : [")!
        let end = text.range(of: "],\n  \"schemaVersion\"")!
        let roofsObject = text.replacingCharacters(in: bracket.lowerBound..<end.upperBound, with: "\"roofs\" : {},\n  \"schemaVersion\"")
        let e = try expectRejected(Array(roofsObject.utf8))
        #expect(e?.field == "roofs" && e?.line == roofsLine)
    }

    @Test("invalid values: unknown enum names, impossible numbers, a tampered id, a bad date, duplicate problems")
    func invalidValues() throws {
        let text = try sampleText()
        let cases: [(old: String, new: String, field: String, reason: String)] = [
            ("\"effort\" : \"measure\"", "\"effort\" : \"fast\"", "effort", "\"estimate\", \"measure\", \"patient\""),
            ("\"split\" : \"both\"", "\"split\" : \"diagonal\"", "plans[0].chosen.variant.split", "\"head\", \"tokens\", \"both\""),
            ("\"dot\" : \"int8\"", "\"dot\" : \"int4\"", "plans[0].runnersUp[0].variant.dot", "\"fp32\", \"int8\""),
            ("\"dot\" : \"int8\"", "\"dot\" : \"INT8\"", "plans[0].runnersUp[0].variant.dot", "\"fp32\", \"int8\""),
            ("\"level\" : \"DRAM\"", "\"level\" : \"L4\"", "roofs[1].level", "\"L1\", \"L2\", \"L3\", \"DRAM\""),
            ("\"tile\" : 13", "\"tile\" : 0", "plans[0].chosen.variant.tile", "≥ 1"),
            ("\"tile\" : 13", "\"tile\" : 99999999999999999999999", "plans[0].chosen.variant.tile", "out of range"),
            ("\"pageTokens\" : 112", "\"pageTokens\" : -112", "plans[0].chosen.variant.pageTokens", "≥ 1"),
            ("\"headDim\" : 96", "\"headDim\" : 1000000000", "plans[0].problem.headDim", "≤ 65536"),
            ("\"gbps\" : 41.5", "\"gbps\" : -41.5", "plans[0].chosen.gbps", "finite"),
            ("\"gbps\" : 41.5", "\"gbps\" : 1e999", "plans[0].chosen.gbps", "out of range"),
            ("\"nsPerTokenKVHead\" : 3.75", "\"nsPerTokenKVHead\" : 0", "plans[0].chosen.nsPerTokenKVHead", "> 0"),
            ("\"createdAt\" : \"2026-01-02T03:04:05Z\"", "\"createdAt\" : \"yesterday\"", "createdAt", "ISO-8601"),
            ("\"schemaVersion\" : 3", "\"schemaVersion\" : 0", "schemaVersion", "start at 1"),
            ("\"cores\" : 2", "\"cores\" : 3", "host.id", "does not match the host fields"),
        ]
        for c in cases {
            let (bad, line) = replacingOnce(text, c.old, with: c.new)
            let e = try expectRejected(Array(bad.utf8))
            guard case .invalidValue(_, let field, let reason, let l) = e else {
                Issue.record("\(c.new): expected .invalidValue, got \(String(describing: e))")
                continue
            }
            #expect(field == c.field, "\(c.new)")
            #expect(reason.contains(c.reason), "\(c.new): \(reason)")
            if c.field == "host.id" {
                #expect(l == lineOf("\"id\" : ", in: bad))
            } else {
                #expect(l == line, "\(c.new)")
            }
        }
        // More threads than the problem allows (plans[0].chosen.variant.threads, just before its "tile" : 13).
        let tile = text.range(of: "\"tile\" : 13")!
        let threads = text.range(of: "\"threads\" : 2", options: .backwards, range: text.startIndex..<tile.lowerBound)!
        let tooMany = text.replacingCharacters(in: threads, with: "\"threads\" : 3")
        let e = try expectRejected(Array(tooMany.utf8))
        guard case .invalidValue(_, "plans[0].chosen.variant.threads", let reason, let l) = e else {
            Issue.record("expected .invalidValue for threads, got \(String(describing: e))")
            return
        }
        #expect(reason.contains("exceeds the 2 thread(s)"))
        #expect(l == text[..<threads.lowerBound].filter { $0 == "\n" }.count + 1)

        // The same problem twice.
        var p = sampleProfile()
        p.plans.append(p.plans[0])
        #expect(p.validationIssue()?.field == "plans[2].problem")
        #expect(throws: ProfileError.self) { try p.encoded() }
    }

    @Test("missing fields name the field and the line of the enclosing object")
    func missingFields() throws {
        let text = try sampleText()
        let cases: [(remove: String, field: String, objectLine: String)] = [
            ("\"headDim\" : 96,\n", "plans[0].problem.headDim", "\"problem\" : {"),
            ("\"libraryVersion\" : \"\(QAQ.version)\",\n", "libraryVersion", "{"),
            ("\"pageTokens\" : 112,\n", "plans[0].chosen.variant.pageTokens", "\"variant\" : {"),
        ]
        for c in cases {
            let parts = text.components(separatedBy: c.remove)
            #expect(parts.count == 2, "\(c.remove)")
            let line: Int
            if c.objectLine == "{" {
                line = 1
            } else {
                let enclosing = parts[0].range(of: c.objectLine, options: .backwards)!
                line = parts[0][..<enclosing.lowerBound].filter { $0 == "\n" }.count + 1
            }
            let bad = parts.joined()
            let e = try expectRejected(Array(bad.utf8))
            guard case .missingField(_, let field, let l) = e else {
                Issue.record("expected .missingField for \(c.field), got \(String(describing: e))")
                continue
            }
            #expect(field == c.field)
            #expect(l == line, "\(c.field): line of the enclosing object")
        }
        // Whole sections.
        for key in ["host", "plans", "effort"] {
            let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            var d = obj
            d.removeValue(forKey: key)
            let data = try JSONSerialization.data(withJSONObject: d, options: [.prettyPrinted, .sortedKeys])
            let e = try expectRejected([UInt8](data))
            #expect(e?.field == key && e?.line == 1)
        }
        // No schemaVersion at all.
        let e = try expectRejected(Array("{\n  \"effort\" : \"measure\"\n}\n".utf8))
        guard case .missingField(_, "schemaVersion", 1) = e else { Issue.record("expected missing schemaVersion, got \(String(describing: e))"); return }
    }

    @Test("a future schema is refused by version before its fields are looked at")
    func futureSchema() throws {
        let future = "{\n  \"schemaVersion\" : 4,\n  \"wisdom\" : [\"something new\"]\n}\n"
        let e = try expectRejected(Array(future.utf8))
        guard case .unsupportedSchema(_, 4, Profile.currentSchemaVersion, 2) = e else {
            Issue.record("expected .unsupportedSchema, got \(String(describing: e))")
            return
        }
        #expect(e?.description.contains("schemaVersion 4") == true)
        let (bumped, _) = replacingOnce(try sampleText(), "\"schemaVersion\" : 3", with: "\"schemaVersion\" : 7")
        let e2 = try expectRejected(Array(bumped.utf8))
        guard case .unsupportedSchema(_, 7, _, _) = e2 else { Issue.record("expected .unsupportedSchema, got \(String(describing: e2))"); return }
    }

    @Test("a missing file, a directory, and an unreadable path give typed errors; the engine falls back with one warning")
    func missingAndUnreadable() throws {
        let dir = try makeTempDirectory()
        defer { removeTree(dir) }
        #expect(throws: ProfileError.fileNotFound(path: dir + "/none.json")) { try Profile.load(from: dir + "/none.json") }
        #expect(throws: ProfileError.fileNotFound(path: dir + "/no/dir.json")) { try Profile.load(from: dir + "/no/dir.json") }
        do {
            _ = try Profile.load(from: dir)
            Issue.record("a directory loaded")
        } catch {
            guard case .unreadable = error else { Issue.record("expected .unreadable, got \(error)"); return }
        }
        // A FIFO: refused at once, without waiting for a writer.
        #expect(mkfifo(dir + "/fifo", 0o644) == 0)
        do {
            _ = try Profile.load(from: dir + "/fifo")
            Issue.record("a FIFO loaded")
        } catch {
            guard case .unreadable(_, _, let reason) = error else { Issue.record("expected .unreadable, got \(error)"); return }
            #expect(reason.contains("not a regular file"))
        }
        removeTree(dir + "/fifo")
        let rt = try QAQRuntime(profile: dir + "/none.json", topology: syntheticTopology(), isa: .v4)
        #expect(rt.source == .estimate && rt.profile == nil)
        #expect(rt.warning?.contains("no profile at") == true && rt.warning?.contains("qaqtune") == true)
        #expect(directoryEntries(dir).isEmpty, "loading never creates files")
    }

    // MARK: Writing

    @Test("unwritable output paths: a typed error, no file created, no temporary file left")
    func unwritable() throws {
        let dir = try makeTempDirectory()
        defer { removeTree(dir) }
        try writeText("not a directory", to: dir + "/file")
        try FileManager.default.createDirectory(atPath: dir + "/adir/inner", withIntermediateDirectories: true)
        let p = sampleProfile()
        var paths = [dir + "/missing/dir/p.json", dir + "/file/p.json", dir + "/adir", dir + "/"]
        #if os(Linux)
        paths.append("/proc/qaq-no-such.json")  // procfs refuses new files, even to root
        #endif
        for path in paths {
            do {
                try p.write(to: path)
                Issue.record("\(path): write succeeded")
            } catch {
                guard case .writeFailed(let at, _, let code, _) = error else { Issue.record("\(path): expected .writeFailed, got \(error)"); continue }
                #expect(at == path && code != 0)
                #expect(error.description.contains("left unchanged"))
            }
        }
        #expect(directoryEntries(dir) == ["adir", "file"])
        #expect(directoryEntries(dir + "/adir") == ["inner"], "the directory in the way is untouched, the temp file removed")
        #expect(String(decoding: readBytes(dir + "/file") ?? [], as: UTF8.self) == "not a directory")
    }

    @Test("a failed write never clobbers an existing profile")
    func failedWriteKeepsOldProfile() throws {
        let dir = try makeTempDirectory()
        defer { removeTree(dir) }
        let good = sampleProfile()
        let path = dir + "/" + Profile.fileName(for: good.host)
        try good.write(to: path)
        let before = readBytes(path)

        var nan = good
        nan.roofs[0].gbps = .nan
        var zeroThreads = good
        zeroThreads.plans[1].chosen.variant.threads = 0
        var badID = good
        badID.host.id = "0123456789abcdef"
        for (name, bad, field) in [("NaN", nan, "roofs[0].gbps"), ("0 threads", zeroThreads, "plans[1].chosen.variant.threads"),
                                   ("tampered id", badID, "host.id")] {
            do {
                try bad.write(to: path)
                Issue.record("\(name): an invalid profile was written")
            } catch {
                guard case .encodingFailed(let f, _) = error else { Issue.record("\(name): expected .encodingFailed, got \(error)"); continue }
                #expect(f == field)
            }
            #expect(readBytes(path) == before, "\(name): the old profile is intact")
        }
        #expect(directoryEntries(dir) == [Profile.fileName(for: good.host)])
        #expect(try Profile.load(from: path) == good)
    }
}
