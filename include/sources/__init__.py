"""The source clients: GiftPro and Different Breed over one retrying HTTP layer, their
normalisers and the merchant's customer list. Nothing here imports the warehouse."""
