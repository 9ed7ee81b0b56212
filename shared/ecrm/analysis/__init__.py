"""Engine 2, analysis and segmentation: segments (rules, real-time and batch membership), OLAP over
the lake, and the statistics that turn the customer store into decisions (RFM, clustering, churn,
lifetime value, campaign lift)."""
