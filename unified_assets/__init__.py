"""unified_assets: one fresh, trustworthy demand dataset from accounting, purchasing and support."""
