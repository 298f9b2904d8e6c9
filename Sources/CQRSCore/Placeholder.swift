// CQRSCore
