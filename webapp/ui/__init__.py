"""The page: the Live, Image and Video tabs, the API endpoints, tables and charts."""
