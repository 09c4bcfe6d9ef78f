import Logging
import RumorCore

extension NodeLog.Level {
    var logLevel: Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}

extension StorageWrite {
    /// What kind of change this is, for log lines.
    var kind: String {
        switch self {
        case .save: "save"
        case .touch: "change-log positions"
        case .forget: "collected tombstones"
        case .synced: "sync time"
        }
    }
}
