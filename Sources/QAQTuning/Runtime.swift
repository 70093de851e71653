import QAQ

/// Where a runtime's plans come from.
public enum PlanSource: Sendable, Equatable {
    /// A profile whose host matched exactly or compatibly.
    case profile(path: String, match: FingerprintMatch)
    /// Estimate-level defaults (no profile, or one that does not fit this host).
    case estimate
}

/// The plan an engine should run for a problem, and where it came from.
public struct ResolvedPlan: Sendable, Equatable {
    public enum Origin: Sendable, Equatable {
        /// The profile's plan for exactly this problem.
        case profile
        /// The profile's plan for the same shape at another context bucket.
        case profileNearest(contextBucket: Int)
        /// Estimate-level defaults.
        case estimate
    }

    public var variant: KernelVariant
    public var origin: Origin
    /// The profile's measurement of the variant, when it came from a profile.
    public var measured: MeasuredVariant?
}

/// The engine side of profiles: loads one profile once and answers "which variant for this
/// problem?". With no usable profile it answers with estimate-level defaults (``Estimate``)
/// and carries one warning for the engine to print.
///
/// ```swift
/// let runtime = try QAQRuntime(profile: "profiles/\(HostFingerprint.current.id).json")
/// if let w = runtime.warning { print(w) }          // mismatch or missing: one line
/// if let n = runtime.note { print(n) }             // compatible host
/// let plan = runtime.plan(for: Problem(headDim: 64, kvHeads: 3, gqa: 3, contextBucket: 2048, threads: 2))
/// ```
public struct QAQRuntime: Sendable {
    /// This host (or the topology the caller passed).
    public let topology: Topology
    public let host: HostFingerprint
    /// The profile whose plans are used; nil when running on estimate-level defaults.
    public let profile: Profile?
    public let source: PlanSource
    /// Set when a compatible (not exact) profile is used.
    public let note: String?
    /// Set when a profile was asked for but estimate-level defaults are used instead.
    public let warning: String?
    /// The highest ISA level plans may use: the topology's, lowered by `QAQ_ISA`.
    public let isa: ISALevel

    private init(topology: Topology, profile: Profile?, source: PlanSource, note: String?, warning: String?, isa: ISALevel?) {
        self.topology = topology
        self.host = HostFingerprint(topology)
        self.profile = profile
        self.source = source
        self.note = note
        self.warning = warning
        self.isa = min(isa ?? ((try? ISALevel.selected()) ?? topology.isa), topology.isa)
    }

    /// Estimate-level defaults, no profile asked for (no warning).
    public init(estimateFor topology: Topology = .current, isa: ISALevel? = nil) {
        self.init(topology: topology, profile: nil, source: .estimate, note: nil, warning: nil, isa: isa)
    }

    /// Uses an already-decoded profile if its host matches `topology` exactly or compatibly;
    /// otherwise estimate-level defaults and one warning.
    public init(profile: Profile, path: String = "<profile>", topology: Topology = .current, isa: ISALevel? = nil) {
        let here = HostFingerprint(topology)
        switch profile.host.match(here) {
        case .exact:
            self.init(topology: topology, profile: profile, source: .profile(path: path, match: .exact), note: nil, warning: nil, isa: isa)
        case .compatible(let d):
            self.init(topology: topology, profile: profile, source: .profile(path: path, match: .compatible(differences: d)),
                      note: "QAQ: using profile \(path) from a compatible host (\(d.joined(separator: "; "))); its plans were measured there.",
                      warning: nil, isa: isa)
        case .mismatch(let d):
            self.init(topology: topology, profile: nil, source: .estimate, note: nil,
                      warning: "QAQ warning: profile \(path) was made on another host (\(d.joined(separator: "; "))); using estimate-level defaults. Run `qaqtune` on this host to write profiles/\(here.id).json.",
                      isa: isa)
        }
    }

    /// Loads the profile at `path` once. A missing file or a profile for another host gives
    /// estimate-level defaults plus one ``warning``; a malformed profile throws a
    /// ``ProfileError`` naming the field and line (use ``loadingOrDefaults(profile:topology:isa:)``
    /// to fall back instead). Never writes.
    public init(profile path: String, topology: Topology = .current, isa: ISALevel? = nil) throws(ProfileError) {
        do {
            let p = try Profile.load(from: path)
            self.init(profile: p, path: path, topology: topology, isa: isa)
        } catch .fileNotFound {
            let id = HostFingerprint(topology).id
            self.init(topology: topology, profile: nil, source: .estimate, note: nil,
                      warning: "QAQ warning: no profile at \(path); using estimate-level defaults. Run `qaqtune` on this host to write profiles/\(id).json.",
                      isa: isa)
        }
    }

    /// Like ``init(profile:topology:isa:)`` but never throws: a malformed or unreadable profile
    /// also gives estimate-level defaults, with the error in the warning.
    public static func loadingOrDefaults(profile path: String, topology: Topology = .current, isa: ISALevel? = nil) -> QAQRuntime {
        do {
            return try QAQRuntime(profile: path, topology: topology, isa: isa)
        } catch {
            return QAQRuntime(topology: topology, profile: nil, source: .estimate, note: nil,
                              warning: "QAQ warning: ignoring the profile: \(error). Using estimate-level defaults.", isa: isa)
        }
    }

    /// `directory/<fingerprint id>.json`: where `qaqtune` writes this host's profile.
    public static func defaultProfilePath(directory: String = "profiles", host: HostFingerprint = .current) -> String {
        "\(directory)/\(Profile.fileName(for: host))"
    }

    /// The variant to run for a problem: the profile's plan for this problem, else its plan
    /// for the same shape at the nearest context bucket (the smallest one ≥ the asked one,
    /// else the largest), else the estimate-level default. Thread counts are capped by the
    /// problem's allowance and the affinity mask; variants above ``isa`` are not used.
    public func plan(for problem: Problem) -> ResolvedPlan {
        if let profile {
            if let record = profile.plan(for: problem), let v = usable(record.chosen.variant, problem) {
                return ResolvedPlan(variant: v, origin: .profile, measured: record.chosen)
            }
            let sameShape = profile.plans.filter {
                $0.problem.headDim == problem.headDim && $0.problem.kvHeads == problem.kvHeads && $0.problem.gqa == problem.gqa
                    && $0.problem.bitMix == problem.bitMix && $0.problem.elementType == problem.elementType
                    && $0.problem.threads == problem.threads && usable($0.chosen.variant, problem) != nil
            }
            let above = sameShape.filter { $0.problem.contextBucket >= problem.contextBucket }.min { $0.problem.contextBucket < $1.problem.contextBucket }
            let below = sameShape.max { $0.problem.contextBucket < $1.problem.contextBucket }
            if let r = above ?? below, let v = usable(r.chosen.variant, problem) {
                return ResolvedPlan(variant: v, origin: .profileNearest(contextBucket: r.problem.contextBucket), measured: r.chosen)
            }
        }
        var v = Estimate.variant(for: problem, topology: topology)
        v.isa = min(v.isa, isa)
        v.tile = min(Estimate.lanes(v.isa), v.pageTokens)
        return ResolvedPlan(variant: v, origin: .estimate, measured: nil)
    }

    /// The variant adjusted to this process (threads capped), or nil if it cannot run here.
    private func usable(_ variant: KernelVariant, _ problem: Problem) -> KernelVariant? {
        guard variant.isa <= isa else { return nil }
        var v = variant
        let cap = max(1, min(problem.threads, topology.usablePUs))
        if v.threads > cap {
            v.threads = cap
            v.split = Estimate.split(kvHeads: problem.kvHeads, threads: cap)
            if cap == 1 { v.pinning = .none }
        }
        return v
    }
}
