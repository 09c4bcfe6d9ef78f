@_exported import RumorAPI
