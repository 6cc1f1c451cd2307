"""Redemption analytics: what a mailing, a campaign or a group handed out, and what came
back (codes sent → redeemed, the rate, the median time to redeem, redemptions by day)."""
