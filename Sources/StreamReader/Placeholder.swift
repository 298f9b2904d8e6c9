// StreamReader
