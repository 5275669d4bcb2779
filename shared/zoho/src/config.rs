//! Where an organisation's Zoho lives: its data centre (accounts server and API domain, all eight, the
//! Canada accounts host included) or explicit URLs for any Zoho-compatible server, and whether each
//! entity kind is read from Books v3 or Inventory v1.

use std::collections::HashMap;
use std::str::FromStr;

use tds_core::EntityKind;

/// A Zoho data centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataCentre {
    /// United States (`.com`).
    Us,
    /// Europe (`.eu`).
    Eu,
    /// India (`.in`).
    In,
    /// Australia (`.com.au`).
    Au,
    /// Japan (`.jp`).
    Jp,
    /// Canada: accounts at `zohocloud.ca`, API at `zohoapis.ca`.
    Ca,
    /// China (`.com.cn`).
    Cn,
    /// Saudi Arabia (`.sa`).
    Sa,
}

impl DataCentre {
    /// Every data centre.
    pub const ALL: [DataCentre; 8] = [
        DataCentre::Us,
        DataCentre::Eu,
        DataCentre::In,
        DataCentre::Au,
        DataCentre::Jp,
        DataCentre::Ca,
        DataCentre::Cn,
        DataCentre::Sa,
    ];

    /// The Zoho Accounts (OAuth) server.
    pub fn accounts_url(self) -> &'static str {
        match self {
            DataCentre::Us => "https://accounts.zoho.com",
            DataCentre::Eu => "https://accounts.zoho.eu",
            DataCentre::In => "https://accounts.zoho.in",
            DataCentre::Au => "https://accounts.zoho.com.au",
            DataCentre::Jp => "https://accounts.zoho.jp",
            DataCentre::Ca => "https://accounts.zohocloud.ca",
            DataCentre::Cn => "https://accounts.zoho.com.cn",
            DataCentre::Sa => "https://accounts.zoho.sa",
        }
    }

    /// The API host.
    pub fn api_domain(self) -> &'static str {
        match self {
            DataCentre::Us => "https://www.zohoapis.com",
            DataCentre::Eu => "https://www.zohoapis.eu",
            DataCentre::In => "https://www.zohoapis.in",
            DataCentre::Au => "https://www.zohoapis.com.au",
            DataCentre::Jp => "https://www.zohoapis.jp",
            DataCentre::Ca => "https://www.zohoapis.ca",
            DataCentre::Cn => "https://www.zohoapis.com.cn",
            DataCentre::Sa => "https://www.zohoapis.sa",
        }
    }
}

impl FromStr for DataCentre {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "us" | "com" => DataCentre::Us,
            "eu" => DataCentre::Eu,
            "in" => DataCentre::In,
            "au" | "com.au" => DataCentre::Au,
            "jp" => DataCentre::Jp,
            "ca" => DataCentre::Ca,
            "cn" | "com.cn" => DataCentre::Cn,
            "sa" => DataCentre::Sa,
            other => {
                return Err(format!(
                    "unknown Zoho data centre {other:?}; valid: us, eu, in, au, jp, ca, cn, sa"
                ))
            }
        })
    }
}

/// Which Zoho product serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    /// Zoho Books, `/books/v3`.
    Books,
    /// Zoho Inventory, `/inventory/v1`.
    Inventory,
}

impl Product {
    /// The API root path.
    pub fn root(self) -> &'static str {
        match self {
            Product::Books => "/books/v3",
            Product::Inventory => "/inventory/v1",
        }
    }
}

/// How to reach one organisation.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    /// `organization_id`.
    pub org_id: String,
    /// Key of the OAuth credential (refresh token) this organisation uses; organisations sharing a
    /// refresh token share one access token.
    pub credential_id: String,
    /// Zoho Accounts server (`https://accounts.zoho.eu`, or a simulator).
    pub accounts_url: String,
    /// API domain (`https://www.zohoapis.eu`, or a simulator). The token response's `api_domain`
    /// is not trusted over this: it is configuration, not data.
    pub api_domain: String,
    /// Product per entity kind, where it differs from the default (see [`OrgConfig::product_for`]).
    pub products: HashMap<EntityKind, Product>,
}

impl OrgConfig {
    /// An organisation in a data centre; the credential id defaults to the organisation id.
    pub fn in_data_centre(org_id: impl Into<String>, dc: DataCentre) -> OrgConfig {
        let org_id = org_id.into();
        OrgConfig {
            credential_id: org_id.clone(),
            org_id,
            accounts_url: dc.accounts_url().into(),
            api_domain: dc.api_domain().into(),
            products: HashMap::new(),
        }
    }

    /// An organisation on explicit servers (a simulator, a proxy, another region).
    pub fn at(
        org_id: impl Into<String>,
        accounts_url: impl Into<String>,
        api_domain: impl Into<String>,
    ) -> OrgConfig {
        let org_id = org_id.into();
        OrgConfig {
            credential_id: org_id.clone(),
            org_id,
            accounts_url: trim_slash(accounts_url.into()),
            api_domain: trim_slash(api_domain.into()),
            products: HashMap::new(),
        }
    }

    /// The product that serves `kind`: Inventory for the catalogue (items, stock, locations, price
    /// books; Books' item list has no `last_modified_time` filter), Books for transactions and
    /// contacts (vendor payments exist only there), unless configured otherwise.
    pub fn product_for(&self, kind: EntityKind) -> Product {
        if let Some(p) = self.products.get(&kind) {
            return *p;
        }
        match kind.spec().served {
            tds_core::kind::Served::Inventory => Product::Inventory,
            tds_core::kind::Served::Books => Product::Books,
        }
    }
}

fn trim_slash(mut s: String) -> String {
    while s.ends_with('/') {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_eight_data_centres_and_the_canada_accounts_host() {
        assert_eq!(DataCentre::ALL.len(), 8);
        assert_eq!(
            DataCentre::Ca.accounts_url(),
            "https://accounts.zohocloud.ca"
        );
        assert_eq!(DataCentre::Ca.api_domain(), "https://www.zohoapis.ca");
        for dc in DataCentre::ALL {
            assert!(dc.accounts_url().starts_with("https://accounts."));
            assert!(dc.api_domain().starts_with("https://www.zohoapis."));
        }
        assert_eq!("EU".parse::<DataCentre>(), Ok(DataCentre::Eu));
        assert!("uk".parse::<DataCentre>().unwrap_err().contains("valid"));
    }

    #[test]
    fn products_default_by_kind_and_can_be_overridden() {
        let mut org = OrgConfig::at("1", "http://sim/", "http://sim//");
        assert_eq!(org.api_domain, "http://sim");
        assert_eq!(org.product_for(EntityKind::Item), Product::Inventory);
        assert_eq!(org.product_for(EntityKind::VendorPayment), Product::Books);
        org.products.insert(EntityKind::Invoice, Product::Inventory);
        assert_eq!(org.product_for(EntityKind::Invoice), Product::Inventory);
    }
}
