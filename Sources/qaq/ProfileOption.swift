import ArgumentParser
import Foundation
import QAQ
import QAQTuning

/// `--profile PATH` for the bench subcommands: loads a tuning profile once through
/// ``QAQRuntime`` and resolves the plan for one problem. A missing profile or one made on
/// another host prints the runtime's one warning and gives estimate-level defaults; a malformed
/// profile is an error naming the field and line.
struct ProfiledPlan {
    var variant: KernelVariant
    var attentionPlan: AttentionPlan
    var origin: ResolvedPlan.Origin
    var note: String?

    /// The plan for (D, KV heads, GQA, context) with up to `threads` threads (default: the
    /// usable PUs), 4-bit keys and values.
    static func load(path: String, headDim: Int, kvHeads: Int, gqa: Int, context: Int, threads: Int?) throws -> ProfiledPlan {
        let runtime: QAQRuntime
        do { runtime = try QAQRuntime(profile: path) } catch { throw ValidationError("\(error)") }
        if let w = runtime.warning { FileHandle.standardError.write(Data((w + "\n").utf8)) }
        if let n = runtime.note { FileHandle.standardError.write(Data((n + "\n").utf8)) }
        let problem = Problem(headDim: headDim, kvHeads: kvHeads, gqa: gqa, contextBucket: context,
                              threads: threads ?? runtime.topology.usablePUs)
        let resolved = runtime.plan(for: problem)
        let v = resolved.variant
        let origin: String
        switch resolved.origin {
        case .profile: origin = "profile \(path)"
        case .profileNearest(let c): origin = "profile \(path) (context bucket \(c))"
        case .estimate: origin = "estimate-level defaults"
        }
        return ProfiledPlan(variant: v, attentionPlan: v.attentionPlan(topology: runtime.topology), origin: resolved.origin,
                            note: "plan from \(origin): \(v.shortDescription)")
    }
}
